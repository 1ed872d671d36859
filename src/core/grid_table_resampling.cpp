#include "posenc/grid_table_resampling.h"

#include <cmath>
#include <vector>

#include <c10/util/Exception.h>
#include <torch/torch.h>

namespace posenc {

namespace F = torch::nn::functional;

torch::Tensor resample_grid_table(const torch::Tensor& table, const TokenGrid& from,
                                  const TokenGrid& to, bool antialias) {
  from.validate();
  to.validate();
  TORCH_CHECK(table.dim() == 3 && table.size(0) == 1 && table.size(1) == from.total_tokens(),
              "position table must have shape (1, ", from.total_tokens(), ", C) for a ",
              from.describe(), ", got shape ", table.sizes());
  TORCH_CHECK(from.prefix_tokens == to.prefix_tokens, "the position table holds ",
              from.prefix_tokens, " prefix token rows but the layout has ", to.prefix_tokens,
              " prefix tokens; use the same class-token setting as in training");
  if (from.height == to.height && from.width == to.width)
    return table;

  const int64_t channels = table.size(2);
  auto prefix = table.narrow(1, 0, from.prefix_tokens);
  // (1, H0*W0, C) -> (1, C, H0, W0)
  auto grid = table.narrow(1, from.prefix_tokens, from.grid_tokens())
                  .reshape({1, from.height, from.width, channels})
                  .permute({0, 3, 1, 2});
  auto resized = F::interpolate(grid, F::InterpolateFuncOptions()
                                          .size(std::vector<int64_t>{to.height, to.width})
                                          .mode(torch::kBicubic)
                                          .align_corners(false)
                                          .antialias(antialias));
  // (1, C, H, W) -> (1, H*W, C)
  resized = resized.permute({0, 2, 3, 1}).reshape({1, to.grid_tokens(), channels});
  return torch::cat({prefix, resized}, 1);
}

torch::Tensor resample_axis_table(const torch::Tensor& table, int64_t length) {
  TORCH_CHECK(table.dim() == 2, "axis table must have shape (L, C), got ", table.sizes());
  TORCH_CHECK(length >= 1, "axis table length must be >= 1, got ", length);
  if (table.size(0) == length)
    return table;
  // (L0, C) -> (1, C, L0) -> (1, C, L) -> (L, C)
  auto resized = F::interpolate(table.t().unsqueeze(0), F::InterpolateFuncOptions()
                                                            .size(std::vector<int64_t>{length})
                                                            .mode(torch::kLinear)
                                                            .align_corners(false));
  return resized.squeeze(0).t();
}

namespace {

// BEiT's source offsets along one axis of `source` (odd) entries stretched towards `target`
// entries: -d_n .. -d_1, 0, d_1 .. d_n with d_1 = 1, d_(i+1) = d_i + q^i.
std::vector<double> geometric_offsets(int64_t source, int64_t target) {
  const int64_t half = source / 2;
  const double target_half = static_cast<double>(target / 2);
  // the ratio whose geometric sum 1 + q + ... + q^(half - 1) reaches the target's half extent,
  // bisected on [1.01, 1.5] to 1e-6 as BEiT does (the last midpoint is the ratio)
  double low = 1.01, high = 1.5, ratio = low;
  while (high - low > 1e-6) {
    ratio = (low + high) / 2.0;
    const double sum = (1.0 - std::pow(ratio, static_cast<double>(half))) / (1.0 - ratio);
    (sum > target_half ? high : low) = ratio;
  }
  std::vector<double> outward;  // d_1 .. d_n
  double distance = 1.0;
  for (int64_t i = 0; i < half; ++i) {
    outward.push_back(distance);
    distance += std::pow(ratio, static_cast<double>(i + 1));
  }
  std::vector<double> offsets;
  for (auto it = outward.rbegin(); it != outward.rend(); ++it)
    offsets.push_back(-*it);
  offsets.push_back(0.0);
  offsets.insert(offsets.end(), outward.begin(), outward.end());
  return offsets;
}

// The (target, source) matrix of linear interpolation weights of the integer offsets
// -(target / 2) .. target / 2 between the sorted source points, clamped to the end values outside
// them (as timm's RegularGridInterpolator).
torch::Tensor interpolation_weights(const std::vector<double>& points, int64_t target) {
  const auto count = static_cast<int64_t>(points.size());
  auto weights = torch::zeros({target, count}, torch::kFloat64);
  auto access = weights.accessor<double, 2>();
  const int64_t target_half = target / 2;
  for (int64_t t = 0; t < target; ++t) {
    const auto at = static_cast<double>(t - target_half);
    int64_t right = 0;  // the first point >= at, or the last
    while (right < count - 1 && points[right] < at)
      ++right;
    const int64_t left = std::max<int64_t>(right - 1, 0);
    const double to_left = std::max(at - points[left], 0.0);
    const double to_right = std::max(points[right] - at, 0.0);
    if (to_left == 0.0 && to_right == 0.0) {
      access[t][left] += 0.5;
      access[t][right] += 0.5;
      continue;
    }
    access[t][left] += to_right / (to_left + to_right);
    access[t][right] += to_left / (to_left + to_right);
  }
  return weights;
}

}  // namespace

torch::Tensor resample_offset_table_geometric(const torch::Tensor& table, const TokenGrid& from,
                                              const TokenGrid& to) {
  TORCH_CHECK(from.height % 2 == 1 && from.width % 2 == 1 && to.height % 2 == 1 &&
                  to.width % 2 == 1,
              "offset tables span 2n - 1 offsets per axis; got ", from.height, "x", from.width,
              " to ", to.height, "x", to.width);
  TORCH_CHECK(table.dim() == 2 && table.size(0) == from.height * from.width,
              "offset table must have shape (", from.height * from.width, ", heads) for ",
              from.height, "x", from.width, " offsets, got ", table.sizes());
  if (from.height == to.height && from.width == to.width)
    return table;
  const auto options = table.options();
  const auto rows = interpolation_weights(geometric_offsets(from.height, to.height), to.height)
                        .to(options);
  const auto columns =
      interpolation_weights(geometric_offsets(from.width, to.width), to.width).to(options);
  // (H0', W0', heads) -> (H', W', heads), one axis at a time
  const auto grid = table.view({from.height, from.width, table.size(1)});
  return torch::einsum("ia,jb,abh->ijh", {rows, columns, grid}).reshape({-1, table.size(1)});
}

}  // namespace posenc
