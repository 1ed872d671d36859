#include "encodings/sinusoid.h"

#include <c10/util/Exception.h>
#include <torch/torch.h>

namespace posenc {

torch::Tensor sinusoid(const torch::Tensor& positions, int64_t channels, double temperature) {
  TORCH_INTERNAL_ASSERT(channels % 2 == 0 && channels > 0);
  const int64_t frequencies = channels / 2;
  // w_k = temperature^(-k / K), k = 0 .. K-1
  auto exponents =
      torch::arange(frequencies, positions.options()) / static_cast<double>(frequencies);
  auto omega = torch::pow(temperature, -exponents);
  auto angles = positions.unsqueeze(-1) * omega;  // (..., K)
  return torch::cat({torch::sin(angles), torch::cos(angles)}, -1);
}

}  // namespace posenc
