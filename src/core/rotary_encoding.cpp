// The rotation every rotary encoding shares (RotaryEncodingImpl, positional_encoding.h); each
// encoding only says which angle each pair of channels turns by at each position.
#include <c10/core/InferenceMode.h>
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

bool RotaryEncodingImpl::GridKey::operator==(const GridKey& other) const {
  return height == other.height && width == other.width && normalized == other.normalized &&
         dtype == other.dtype && device == other.device;
}

torch::Tensor RotaryEncodingImpl::angles(const TokenLayout& layout,
                                         const torch::TensorOptions& options) {
  std::optional<GridKey> key;
  if (layout.is_grid() && parameters().empty()) {
    key = GridKey{layout.grid().height, layout.grid().width, false, options.dtype(),
                  options.device()};
    if (angles_key_ == key)
      return cached_angles_;
  }
  auto theta = compute_angles(layout, options);
  const int64_t batch = layout.is_grid() ? 1 : layout.positions().size(0);
  TORCH_CHECK(theta.dim() == 4 && theta.size(0) == batch &&
                  theta.size(1) == layout.positioned_tokens() && theta.size(2) == heads() &&
                  theta.size(3) == head_dim() / 2,
              "rotary encoding '", type(), "' computed angles of shape ", theta.sizes(),
              "; expected (", batch, ", ", layout.positioned_tokens(), ", ", heads(), ", ",
              head_dim() / 2, ")");
  // not from inside InferenceMode: its tensors cannot be saved for a later backward
  if (key && !c10::InferenceMode::is_enabled()) {
    angles_key_ = key;
    cached_angles_ = theta;
  }
  return theta;
}

std::pair<torch::Tensor, torch::Tensor> RotaryEncodingImpl::grid_coordinates(
    const TokenGrid& grid, bool normalized, const torch::TensorOptions& options) {
  const GridKey key{grid.height, grid.width, normalized, options.dtype(), options.device()};
  if (coordinates_key_ == key)
    return cached_coordinates_;
  auto rows = torch::arange(grid.height, options);
  auto columns = torch::arange(grid.width, options);
  if (normalized) {
    rows = (rows + 0.5) * (2.0 / static_cast<double>(grid.height)) - 1.0;
    columns = (columns + 0.5) * (2.0 / static_cast<double>(grid.width)) - 1.0;
  }
  const auto mesh = torch::meshgrid({rows, columns}, "ij");  // row-major, as the tokens
  std::pair<torch::Tensor, torch::Tensor> coordinates{mesh[1].reshape({1, -1}),
                                                      mesh[0].reshape({1, -1})};
  if (!c10::InferenceMode::is_enabled()) {
    coordinates_key_ = key;
    cached_coordinates_ = coordinates;
  }
  return coordinates;
}

QueryKeyRotation RotaryEncodingImpl::rotation(const TokenLayout& layout,
                                              const torch::TensorOptions& options) {
  auto theta = angles(layout, options);  // (1 or B, P, heads, pairs)
  return [this, layout, theta](const torch::Tensor& queries, const torch::Tensor& keys) {
    check_tokens(queries, layout);
    check_tokens(keys, layout);
    return rotate_queries_and_keys(queries, keys, theta, layout.prefix_tokens(), pairs_);
  };
}

torch::Tensor RotaryEncodingImpl::transform(const torch::Tensor& tokens,
                                            const TokenLayout& layout) {
  // (B, N, C), angles (1 or B, P, heads, pairs) -> (B, N, C)
  return rotate_pairs(tokens, angles(layout, tokens.options()), layout.prefix_tokens(), pairs_);
}

}  // namespace posenc
