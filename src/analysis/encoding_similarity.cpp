#include "posenc/analysis/encoding_similarity.h"

#include <limits>

#include <c10/util/Exception.h>
#include <torch/torch.h>

namespace posenc {

torch::Tensor grid_cell_positions(int64_t height, int64_t width) {
  TORCH_CHECK(height >= 1 && width >= 1, "a grid needs positive sizes, got ", height, "x", width);
  const auto rows = torch::arange(height, torch::kFloat32).repeat_interleave(width);
  const auto columns = torch::arange(width, torch::kFloat32).repeat(height);
  return torch::stack({rows, columns}, 1);
}

torch::Tensor cosine_similarity_matrix(const torch::Tensor& signal) {
  TORCH_CHECK(signal.dim() == 2, "the signal must be (positions, channels), got ", signal.sizes());
  const auto unit = torch::nn::functional::normalize(
      signal.to(torch::kFloat32), torch::nn::functional::NormalizeFuncOptions().dim(1).eps(1e-12));
  return unit.matmul(unit.t());
}

double similarity_distance_correlation(const torch::Tensor& similarity,
                                       const torch::Tensor& positions) {
  TORCH_CHECK(similarity.dim() == 2 && similarity.size(0) == similarity.size(1),
              "similarity must be a square (P, P) matrix, got ", similarity.sizes());
  TORCH_CHECK(positions.dim() == 2 && positions.size(0) == similarity.size(0),
              "positions must be (P, M) with P = ", similarity.size(0), ", got ",
              positions.sizes());
  const int64_t count = similarity.size(0);
  const auto pairs = torch::triu_indices(count, count, /*offset=*/1);  // (2, pairs)
  const auto as_double = [](const torch::Tensor& t) { return t.to(torch::kFloat64); };
  const auto distance =
      as_double(torch::cdist(positions.to(torch::kFloat32), positions.to(torch::kFloat32)));
  const auto x = as_double(similarity).index({pairs[0], pairs[1]});
  const auto y = distance.index({pairs[0], pairs[1]});
  if (x.numel() < 2)
    return std::numeric_limits<double>::quiet_NaN();
  const auto dx = x - x.mean();
  const auto dy = y - y.mean();
  const double distance_spread = dy.pow(2).sum().sqrt().item<double>();
  if (distance_spread < 1e-12)
    return std::numeric_limits<double>::quiet_NaN();
  const double spread = dx.pow(2).sum().sqrt().item<double>() * distance_spread;
  if (spread < 1e-12)
    return 0.0;
  return (dx * dy).sum().item<double>() / spread;
}

torch::Tensor centred_similarity(const torch::Tensor& signal) {
  TORCH_CHECK(signal.dim() == 2, "the signal must be (positions, channels), got ", signal.sizes());
  return cosine_similarity_matrix(signal - signal.mean(0, true));
}

double signal_distance_correlation(const torch::Tensor& signal, int64_t height, int64_t width) {
  TORCH_CHECK(signal.dim() == 2 && signal.size(0) == height * width, "the signal must be (",
              height, "*", width, ", C), one vector per grid cell, got ", signal.sizes());
  return similarity_distance_correlation(centred_similarity(signal),
                                         grid_cell_positions(height, width));
}

}  // namespace posenc
