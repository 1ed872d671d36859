// What every attention-bias encoding shares (AttentionBiasEncodingImpl, positional_encoding.h):
// the shape check of the bias it computes, and forward() as the attention that bias alone gives.
#include <c10/util/Exception.h>
#include <torch/torch.h>

#include "posenc/positional_encoding.h"

namespace posenc {

torch::Tensor AttentionBiasEncodingImpl::attention_bias(const TokenGrid& grid,
                                                        const torch::TensorOptions& options) {
  auto bias = compute_bias(grid, options);
  const int64_t tokens = grid.total_tokens();
  TORCH_CHECK(bias.dim() == 3 && bias.size(0) == heads() && bias.size(1) == tokens &&
                  bias.size(2) == tokens,
              "attention-bias encoding '", type(), "' computed a bias of shape ", bias.sizes(),
              "; expected (", heads(), ", ", tokens, ", ", tokens, ")");
  return bias;
}

torch::Tensor AttentionBiasEncodingImpl::attention_bias(const TokenLayout& layout,
                                                        const torch::TensorOptions& options) {
  if (layout.is_grid())
    return attention_bias(layout.grid(), options);
  TORCH_CHECK(layout.is_grid_batch(), "attention-bias encoding '", type(), "' biases by offsets "
              "on token grids, not at explicit positions (", layout.describe(), ")");
  // (B, heads, N, N): each image's grid's bias, zero among and towards its padding
  const auto& grids = layout.grids();
  const int64_t count = layout.total_tokens();
  auto bias = torch::zeros(
      {static_cast<int64_t>(grids.size()), heads(), count, count}, options);
  for (const auto& [grid, images] : layout.images_by_grid(options.device())) {
    const int64_t own = grid.total_tokens();
    // (heads, n, n) -> (n_images, heads, N, N)
    const auto padded = torch::constant_pad_nd(attention_bias(grid, options),
                                               {0, count - own, 0, count - own}, 0.0)
                            .unsqueeze(0)
                            .expand({images.size(0), -1, -1, -1});
    bias = bias.index_copy(0, images, padded);
  }
  return bias;
}

torch::Tensor AttentionBiasEncodingImpl::transform(const torch::Tensor& tokens,
                                                   const TokenLayout& layout) {
  const int64_t batch = tokens.size(0), count = tokens.size(1);
  const auto weights = torch::softmax(attention_bias(layout.grid(), tokens.options()), -1);
  // (B, N, C) -> (B, heads, N, C / heads), mixed by (heads, N, N) -> (B, N, C)
  const auto split = tokens.reshape({batch, count, heads(), head_dim()}).transpose(1, 2);
  return torch::matmul(weights, split).transpose(1, 2).reshape({batch, count, dim()});
}

}  // namespace posenc
