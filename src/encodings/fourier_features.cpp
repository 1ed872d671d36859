#include "encodings/fourier_features.h"

#include <cmath>

#include <torch/torch.h>

namespace posenc {

torch::Tensor fourier_features(const torch::Tensor& positions, const torch::Tensor& wr) {
  auto projected = torch::matmul(positions, wr.t());  // (..., F/2)
  const double scale = 1.0 / std::sqrt(static_cast<double>(2 * wr.size(0)));
  return torch::cat({torch::cos(projected), torch::sin(projected)}, -1) * scale;
}

}  // namespace posenc
