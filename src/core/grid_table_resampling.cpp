#include "posenc/grid_table_resampling.h"

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

}  // namespace posenc
