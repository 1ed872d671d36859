// `rope_lff`: Learnable Fourier Features' frequencies used as rotation angles. Where `lff` takes
// cos and sin of x W_r^T as features, rope_lff turns each head's channel pairs by x W_r^T inside
// attention, so that a logit depends on the positions of two tokens only through x_i - x_j, for
// positions of any dimension M in any G groups (point sets, boxes), not only grids.
//   pair block g of head h (head_dim / 2 / G pairs) turns by x_g W_r[h]^T,
//   W_r: (heads, pairs / G, M)
// As in LFF, W_r is shared by the G groups (each group owns an equal share of the pairs) and
// initialised N(0, gamma^-2); unlike LFF there is one W_r per attention head (as RoPE-Mixed has
// per-head frequencies) and no MLP: the angles must stay linear in x to keep the rotation
// relative. G = 1, M = 2 is RoPE-Mixed with a Gaussian start; G = 2, M = 1 with fixed
// frequencies is RoPE-Axial. On a grid the positions are (row, column), as lff's.
#include <cmath>

#include <torch/torch.h>

#include "posenc/encoding_registry.h"

namespace posenc {
namespace {

class RopeFourierEncodingImpl : public RotaryEncodingImpl {
 public:
  RopeFourierEncodingImpl(const EncodingOptions& options, const EncodingContext& context)
      : RotaryEncodingImpl(options, context),
        groups_(options.integer("G")),
        values_(options.integer("M")),
        normalized_(options.choice("coords") == "normalized") {
    const double gamma = options.number("gamma");
    TORCH_CHECK(groups_ >= 1 && values_ >= 1,
                "rope_lff G (position groups) and M (values per group) must be >= 1, got G = ",
                groups_, ", M = ", values_);
    TORCH_CHECK((head_dim() / 2) % groups_ == 0, "rope_lff gives each of its G groups an equal "
                "share of each head's head_dim / 2 rotation pairs: head_dim / 2 must be divisible "
                "by G, got C = ", dim(), ", heads = ", heads(), " (", head_dim() / 2,
                " pairs), G = ", groups_);
    TORCH_CHECK(gamma > 0.0 && std::isfinite(gamma),
                "rope_lff gamma must be a positive number, got ", gamma);
    const double init_std = options.choice("init") == "paper" ? 1.0 / gamma : 1.0 / (gamma * gamma);
    wr_ = register_parameter(
        "Wr", torch::randn({heads(), head_dim() / 2 / groups_, values_}) * init_std,
        options.boolean("learn_fourier"));
  }
  bool accepts_positions() const override { return true; }

 protected:
  // -> (1 or B, P, heads, head_dim / 2)
  torch::Tensor compute_angles(const TokenLayout& layout, const torch::TensorOptions& options,
                               const CoordinateAugmentation& augmentation) override {
    torch::Tensor positions;  // (B', P, G, M)
    if (layout.is_grid()) {
      TORCH_CHECK(groups_ == 1 && values_ == 2, "rope_lff with G = ", groups_, ", M = ", values_,
                  " cannot encode a 2-D token grid (that needs G = 1, M = 2, the default); "
                  "grouped positions are for token sets (posenc train --task)");
      const auto [x, y] = grid_coordinates(layout.grid(), normalized_, options, augmentation);
      positions = torch::stack({y, x}, -1).unsqueeze(2);  // (1, P, 1, 2): (row, column)
    } else {
      TORCH_CHECK(!normalized_, "rope_lff coords=normalized maps a token grid onto [-1, 1]; "
                  "explicit positions are used as given: scale them, and use coords=patch");
      check_position_shape(layout, groups_, values_);
      positions = layout.positions().to(options);
    }
    // (B', P, G, M) x (heads, pairs/G, M) -> (B', P, heads, G, pairs/G) -> (B', P, heads, pairs)
    const auto theta = torch::einsum("bpgm,hkm->bphgk", {positions, wr_.to(options)});
    return theta.flatten(3);
  }

 private:
  int64_t groups_;
  int64_t values_;
  bool normalized_;
  torch::Tensor wr_;  // (heads, head_dim / 2 / G, M)
};

}  // namespace

EncodingDefinition rope_lff_definition() {
  return define_encoding<RopeFourierEncodingImpl>(
      "rope_lff",
      "Learnable Fourier Features' W_r as rotation angles x W_r^T in attention (RoPE-Mixed for "
      "any G groups of M values); any grid or positions (B, N, G, M).",
      with_coordinate_augmentation_options(
          {{"gamma", OptionType::Number, 1.0,
            "length scale in coordinate units: W_r ~ N(0, gamma^-2), as lff's"},
           {"G", OptionType::Integer, 1,
            "position groups sharing W_r, each turning head_dim / 2 / G pairs (grids: 1)"},
           {"M", OptionType::Integer, 2, "values per group (grids: 2, row and column)"},
           {"init",
            OptionType::Choice,
            "paper",
            "W_r init: paper = variance gamma^-2 (std 1/gamma); port = std gamma^-2, as lff's",
            {"paper", "port"}},
           {"learn_fourier", OptionType::Boolean, true,
            "train W_r; false keeps it at its random initialisation"},
           rotary_pairs_option("interleaved"),
           {"coords",
            OptionType::Choice,
            "patch",
            "grid coordinates: patch = row and column indices in patch units; normalized = patch "
            "centres in [-1, 1] across the grid",
            {"patch", "normalized"}}}));
}

}  // namespace posenc
