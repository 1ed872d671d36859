// `rope_axial`: 2-D rotary position embedding with axial frequencies (Heo et al., "Rotary
// Position Embedding for Vision Transformer", ECCV 2024: RoPE-Axial; naver-ai/rope-vit's
// compute_axial_cis, EVA-02 and timm's RotaryEmbeddingCat). Each head's head_dim / 2 pairs split
// in two halves: pair k of the first half turns by x * f_k, pair k of the second by y * f_k, with
// f_k = temperature^(-4k / head_dim), k = 0 .. head_dim / 4 - 1 (xy indexing; ij puts the row
// first). On a grid, x and y are the column and row in patch units (naver's integer indices), or,
// with coords=normalized, the patch centres mapped to [-1, 1] across the grid with angles
// 2 pi x f_k (DINOv3), so that every grid spans the same angles. At explicit positions (B, P, 1, 2)
// the two values play x and y as given. No parameters: the one module serves every block.
#include <cmath>

#include <torch/torch.h>

#include "posenc/encoding_registry.h"

namespace posenc {
namespace {

class RopeAxialEncodingImpl : public RotaryEncodingImpl {
 public:
  RopeAxialEncodingImpl(const EncodingOptions& options, const EncodingContext& context)
      : RotaryEncodingImpl(options, context),
        temperature_(options.number("temperature")),
        row_first_(options.choice("indexing") == "ij"),
        normalized_(options.choice("coords") == "normalized"),
        reference_height_(options.integer("ref_height")),
        reference_width_(options.integer("ref_width")) {
    TORCH_CHECK(reference_height_ >= 0 && reference_width_ >= 0 &&
                    (reference_height_ > 0) == (reference_width_ > 0),
                "rope_axial ref_height and ref_width (EVA-02's ref_feat_shape) are both grid sizes "
                "> 0, or both 0 for none; got ", reference_height_, " x ", reference_width_);
    TORCH_CHECK(reference_height_ == 0 || !normalized_, "rope_axial coords=normalized already "
                "maps every grid onto [-1, 1]; a reference grid (ref_height, ref_width) rescales "
                "patch coordinates: use one or the other");
    TORCH_CHECK(head_dim() % 4 == 0, "rope_axial gives x and y half of each head's rotation "
                "pairs: C / heads must be divisible by 4, got C = ", dim(), ", heads = ", heads(),
                " (head_dim ", head_dim(), ")");
    TORCH_CHECK(temperature_ > 1.0 && std::isfinite(temperature_),
                "rope_axial temperature (frequency base) must be > 1, got ", temperature_);
  }
  bool accepts_positions() const override { return true; }

 protected:
  // -> (1 or B, P, heads, head_dim / 2)
  torch::Tensor compute_angles(const TokenLayout& layout, const torch::TensorOptions& options,
                               const CoordinateAugmentation& augmentation) override {
    torch::Tensor first, second;  // (1 or B, P): the coordinates of the two halves
    if (layout.is_grid()) {
      auto [x, y] = grid_coordinates(layout.grid(), normalized_, options, augmentation);
      if (reference_height_ > 0) {
        // EVA-02: any grid's coordinates stretched onto the reference grid's, t * ref / size
        x = x * (static_cast<double>(reference_width_) / static_cast<double>(layout.grid().width));
        y = y * (static_cast<double>(reference_height_) /
                 static_cast<double>(layout.grid().height));
      }
      first = row_first_ ? y : x;
      second = row_first_ ? x : y;
    } else {
      TORCH_CHECK(reference_height_ == 0, "rope_axial ref_height and ref_width rescale a token "
                  "grid's coordinates; explicit positions are used as given: scale them, and "
                  "leave the reference grid at 0");
      TORCH_CHECK(!normalized_, "rope_axial coords=normalized maps a token grid onto [-1, 1]; "
                  "explicit positions are used as given: scale them, and use coords=patch");
      check_position_shape(layout, 1, 2);
      const auto positions = layout.positions().to(options);  // (B, P, 1, 2)
      first = positions.select(2, 0).select(2, 0);
      second = positions.select(2, 0).select(2, 1);
    }
    const int64_t quarter = head_dim() / 4;
    // f_k = temperature^(-4k / head_dim)
    auto frequencies = torch::pow(temperature_, torch::arange(quarter, options) *
                                                    (-4.0 / static_cast<double>(head_dim())));
    if (normalized_)
      frequencies = frequencies * (2.0 * M_PI);
    // (B', P, 1) x (quarter) -> (B', P, head_dim / 2)
    auto theta =
        torch::cat({first.unsqueeze(-1) * frequencies, second.unsqueeze(-1) * frequencies}, -1);
    return theta.unsqueeze(2).expand({-1, -1, heads(), -1});
  }

 private:
  double temperature_;
  bool row_first_;
  bool normalized_;
  int64_t reference_height_, reference_width_;  // 0: no reference grid
};

}  // namespace

EncodingDefinition rope_axial_definition() {
  return define_encoding<RopeAxialEncodingImpl>(
      "rope_axial",
      "2-D rotary embedding, axial frequencies (Heo et al. 2024, RoPE-Axial), in attention: half "
      "of each head's channel pairs turn with x, half with y; any grid or positions (B, N, 1, 2).",
      with_coordinate_augmentation_options(
          {{"temperature", OptionType::Number, 100.0,
            "frequency base: f_k = temperature^(-4k / head_dim); naver's RoPE-ViT and DINOv3 100, "
            "EVA-02 and timm 10000"},
           {"indexing",
            OptionType::Choice,
            "xy",
            "which coordinate the first half of the pairs follows: xy = the column (naver, timm), "
            "ij = the row (DINOv3)",
            {"xy", "ij"}},
           rotary_pairs_option("interleaved"),
           {"coords",
            OptionType::Choice,
            "patch",
            "grid coordinates: patch = row and column indices in patch units (naver); normalized = "
            "patch centres in [-1, 1] across the grid, angles 2 pi x f_k (DINOv3)",
            {"patch", "normalized"}},
           {"ref_height", OptionType::Integer, 0,
            "EVA-02's ref_feat_shape (with ref_width): patch coordinates of any H x W grid "
            "rescaled by ref / size, so every grid spans the reference grid's range; 0 = none "
            "(naver, timm's vit_*_rope_*)"},
           {"ref_width", OptionType::Integer, 0, "the reference grid's width, with ref_height"}}));
}

}  // namespace posenc
