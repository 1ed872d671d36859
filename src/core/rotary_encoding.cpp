// The rotation every rotary encoding shares (RotaryEncodingImpl, positional_encoding.h); each
// encoding only says which angle each pair of channels turns by at each position.
#include <cmath>

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

std::vector<OptionSpec> with_coordinate_augmentation_options(std::vector<OptionSpec> options) {
  options.insert(options.end(), {{"shift_coords", OptionType::Number, 0.0,
           "training only (DINOv3): shift each axis of the grid coordinates by a uniform draw in "
           "[-shift, shift], in their units, one draw per step for every block; 0 = none"},
          {"jitter_coords", OptionType::Number, 1.0,
           "training only (DINOv3): scale each axis by a log-uniform draw in [1/jitter, jitter]; "
           "1 = none"},
          {"rescale_coords", OptionType::Number, 1.0,
           "training only (DINOv3; its ViT-7B uses 2): scale both axes by one log-uniform draw in "
           "[1/rescale, rescale]; 1 = none"}});
  return options;
}

bool CoordinateAugmentation::is_identity() const {
  return shift_x == 0.0 && shift_y == 0.0 && scale_x == 1.0 && scale_y == 1.0;
}

RotaryEncodingImpl::RotaryEncodingImpl(const EncodingOptions& options,
                                       const EncodingContext& context)
    : PositionalEncodingImpl(options, context),
      pairs_(parse_rotary_pairs(options.choice("pairs"))) {
  TORCH_CHECK(head_dim() % 2 == 0, "rotary encoding '", type(), "' rotates pairs of channels: ",
              "each head's C / heads channels must be even, got C = ", dim(), ", heads = ",
              heads());
  if (options.resolved().contains("shift_coords")) {
    shift_coords_ = options.number("shift_coords");
    jitter_coords_ = options.number("jitter_coords");
    rescale_coords_ = options.number("rescale_coords");
    TORCH_CHECK(std::isfinite(shift_coords_) && shift_coords_ >= 0.0, type(),
                " shift_coords must be >= 0 (0 = no shift), got ", shift_coords_);
    TORCH_CHECK(std::isfinite(jitter_coords_) && jitter_coords_ >= 1.0, type(),
                " jitter_coords is a scale factor >= 1 (1 = no jitter), got ", jitter_coords_);
    TORCH_CHECK(std::isfinite(rescale_coords_) && rescale_coords_ >= 1.0, type(),
                " rescale_coords is a scale factor >= 1 (1 = no rescale), got ", rescale_coords_);
  }
}

bool RotaryEncodingImpl::augments_coordinates() const {
  return shift_coords_ > 0.0 || jitter_coords_ > 1.0 || rescale_coords_ > 1.0;
}

CoordinateAugmentation RotaryEncodingImpl::draw_coordinate_augmentation() const {
  CoordinateAugmentation draw;
  if (!is_training() || !augments_coordinates())
    return draw;
  // DINOv3's order of draws: the shift (rows, columns), the jitter (rows, columns), the rescale
  if (shift_coords_ > 0.0) {
    const auto shift = torch::empty({2}, torch::kFloat64).uniform_(-shift_coords_, shift_coords_);
    draw.shift_y = shift[0].item<double>();
    draw.shift_x = shift[1].item<double>();
  }
  if (jitter_coords_ > 1.0) {
    const double range = std::log(jitter_coords_);
    const auto jitter = torch::empty({2}, torch::kFloat64).uniform_(-range, range).exp();
    draw.scale_y = jitter[0].item<double>();
    draw.scale_x = jitter[1].item<double>();
  }
  if (rescale_coords_ > 1.0) {
    const double range = std::log(rescale_coords_);
    const double rescale =
        torch::empty({1}, torch::kFloat64).uniform_(-range, range).exp().item<double>();
    draw.scale_x *= rescale;
    draw.scale_y *= rescale;
  }
  return draw;
}

bool RotaryEncodingImpl::GridKey::operator==(const GridKey& other) const {
  return height == other.height && width == other.width && normalized == other.normalized &&
         dtype == other.dtype && device == other.device;
}

torch::Tensor RotaryEncodingImpl::angles(const TokenLayout& layout,
                                         const torch::TensorOptions& options,
                                         const CoordinateAugmentation& augmentation) {
  if (layout.is_grid_batch()) {
    const auto& grids = layout.grids();
    const int64_t positioned = layout.positioned_tokens();
    auto theta = torch::zeros(
        {static_cast<int64_t>(grids.size()), positioned, heads(), head_dim() / 2}, options);
    for (const auto& [grid, images] : layout.images_by_grid(options.device())) {
      // (1, P_g, heads, pairs) -> (n_images, P, heads, pairs)
      const auto own = angles(grid, options, augmentation);
      const auto padded =
          torch::constant_pad_nd(own, {0, 0, 0, 0, 0, positioned - own.size(1)}, 0.0)
              .expand({images.size(0), -1, -1, -1});
      theta = theta.index_copy(0, images, padded);
    }
    return theta;
  }
  TORCH_CHECK(layout.is_grid() || augmentation.is_identity(), "rotary encoding '", type(),
              "': shift_coords, jitter_coords and rescale_coords augment a token grid's "
              "coordinates while training; explicit positions are used as given: augment them in "
              "the data, and leave these options at 0, 1, 1");
  std::optional<GridKey> key;
  if (layout.is_grid() && parameters().empty() && augmentation.is_identity()) {
    key = GridKey{layout.grid().height, layout.grid().width, false, options.dtype(),
                  options.device()};
    if (angles_key_ == key)
      return cached_angles_;
  }
  auto theta = compute_angles(layout, options, augmentation);
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
    const TokenGrid& grid, bool normalized, const torch::TensorOptions& options,
    const CoordinateAugmentation& augmentation) {
  const auto augmented = [&augmentation](const std::pair<torch::Tensor, torch::Tensor>& xy) {
    if (augmentation.is_identity())
      return xy;
    return std::pair<torch::Tensor, torch::Tensor>{
        (xy.first + augmentation.shift_x) * augmentation.scale_x,
        (xy.second + augmentation.shift_y) * augmentation.scale_y};
  };
  const GridKey key{grid.height, grid.width, normalized, options.dtype(), options.device()};
  if (coordinates_key_ == key)
    return augmented(cached_coordinates_);
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
  return augmented(coordinates);
}

QueryKeyRotation RotaryEncodingImpl::rotation(const TokenLayout& layout,
                                              const torch::TensorOptions& options,
                                              const CoordinateAugmentation& augmentation) {
  auto theta = angles(layout, options, augmentation);  // (1 or B, P, heads, pairs)
  return [this, layout, theta](const torch::Tensor& queries, const torch::Tensor& keys) {
    check_tokens(queries, layout);
    check_tokens(keys, layout);
    return rotate_queries_and_keys(queries, keys, theta, layout.prefix_tokens(), pairs_);
  };
}

torch::Tensor RotaryEncodingImpl::transform(const torch::Tensor& tokens,
                                            const TokenLayout& layout) {
  // (B, N, C), angles (1 or B, P, heads, pairs) -> (B, N, C)
  return rotate_pairs(tokens, angles(layout, tokens.options(), draw_coordinate_augmentation()),
                      layout.prefix_tokens(), pairs_);
}

}  // namespace posenc
