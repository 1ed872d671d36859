// The rotation every rotary encoding shares (RotaryEncodingImpl, positional_encoding.h); each
// encoding only says which angle each pair of channels turns by at each position.
#include <c10/util/Exception.h>
#include <torch/torch.h>

#include "posenc/positional_encoding.h"

namespace posenc {

OptionSpec rotary_pairs_option(const std::string& default_layout) {
  return {"pairs",
          OptionType::Choice,
          default_layout,
          "which channels of a head rotate together: interleaved = (2i, 2i+1), naver's RoPE-ViT; "
          "half = (i, i + head_dim/2), the rotate-half of EVA-02, timm and DINOv3",
          {"interleaved", "half"}};
}

RotaryEncodingImpl::RotaryEncodingImpl(const EncodingOptions& options,
                                       const EncodingContext& context)
    : PositionalEncodingImpl(options, context),
      pairs_(parse_rotary_pairs(options.choice("pairs"))) {
  TORCH_CHECK(head_dim() % 2 == 0, "rotary encoding '", type(), "' rotates pairs of channels: ",
              "each head's C / heads channels must be even, got C = ", dim(), ", heads = ",
              heads());
}

torch::Tensor RotaryEncodingImpl::angles(const TokenLayout& layout,
                                         const torch::TensorOptions& options) {
  auto theta = compute_angles(layout, options);
  const int64_t batch = layout.is_grid() ? 1 : layout.positions().size(0);
  TORCH_CHECK(theta.dim() == 4 && theta.size(0) == batch &&
                  theta.size(1) == layout.positioned_tokens() && theta.size(2) == heads() &&
                  theta.size(3) == head_dim() / 2,
              "rotary encoding '", type(), "' computed angles of shape ", theta.sizes(),
              "; expected (", batch, ", ", layout.positioned_tokens(), ", ", heads(), ", ",
              head_dim() / 2, ")");
  return theta;
}

std::pair<torch::Tensor, torch::Tensor> RotaryEncodingImpl::grid_coordinates(
    const TokenGrid& grid, bool normalized, const torch::TensorOptions& options) {
  auto rows = torch::arange(grid.height, options);
  auto columns = torch::arange(grid.width, options);
  if (normalized) {
    rows = (rows + 0.5) * (2.0 / static_cast<double>(grid.height)) - 1.0;
    columns = (columns + 0.5) * (2.0 / static_cast<double>(grid.width)) - 1.0;
  }
  const auto mesh = torch::meshgrid({rows, columns}, "ij");  // row-major, as the tokens
  return {mesh[1].reshape({1, -1}), mesh[0].reshape({1, -1})};
}

std::function<torch::Tensor(const torch::Tensor&)> RotaryEncodingImpl::rotation(
    const TokenLayout& layout, const torch::TensorOptions& options) {
  auto theta = angles(layout, options);  // (1 or B, P, heads, pairs)
  return [this, layout, theta](const torch::Tensor& tokens) {
    check_tokens(tokens, layout);
    return rotate_pairs(tokens, theta, layout.prefix_tokens(), pairs_);
  };
}

torch::Tensor RotaryEncodingImpl::transform(const torch::Tensor& tokens,
                                            const TokenLayout& layout) {
  // (B, N, C), angles (1 or B, P, heads, pairs) -> (B, N, C)
  return rotate_pairs(tokens, angles(layout, tokens.options()), layout.prefix_tokens(), pairs_);
}

}  // namespace posenc
