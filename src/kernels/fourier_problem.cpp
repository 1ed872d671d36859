#include "kernels/fourier_problem.h"

#include <cmath>

#include <torch/torch.h>

namespace posenc::kernels {

FourierProblem fourier_problem(const torch::Tensor& wr_transposed) {
  FourierProblem problem;
  problem.values = wr_transposed.size(0);
  problem.frequencies = wr_transposed.size(1);
  problem.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(2 * problem.frequencies)));
  problem.wr_transposed = wr_transposed.data_ptr<float>();
  return problem;
}

}  // namespace posenc::kernels
