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
      interleaved_(options.choice("pairs") == "interleaved") {
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

torch::Tensor RotaryEncodingImpl::transform(const torch::Tensor& tokens,
                                            const TokenLayout& layout) {
  const int64_t batch = tokens.size(0), prefix = layout.prefix_tokens();
  const int64_t positioned = layout.positioned_tokens(), pairs = head_dim() / 2;
  const auto theta = angles(layout, tokens.options());  // (1 or B, P, heads, pairs)
  const auto cos = theta.cos(), sin = theta.sin();
  // (B, P, C) -> (B, P, heads, head_dim): each head's pairs (a_i, b_i)
  const auto x = tokens.narrow(1, prefix, positioned).reshape({batch, positioned, heads(), -1});
  torch::Tensor a, b;
  if (interleaved_) {
    const auto split = x.unflatten(-1, {pairs, 2});
    a = split.select(-1, 0);
    b = split.select(-1, 1);
  } else {
    a = x.narrow(-1, 0, pairs);
    b = x.narrow(-1, pairs, pairs);
  }
  // (a, b) turned by theta: (a cos - b sin, a sin + b cos)
  const auto turned_a = a * cos - b * sin;
  const auto turned_b = a * sin + b * cos;
  auto rotated = interleaved_ ? torch::stack({turned_a, turned_b}, -1).flatten(-2)
                              : torch::cat({turned_a, turned_b}, -1);
  rotated = rotated.reshape({batch, positioned, dim()});
  return prefix > 0 ? torch::cat({tokens.narrow(1, 0, prefix), rotated}, 1) : rotated;
}

}  // namespace posenc
