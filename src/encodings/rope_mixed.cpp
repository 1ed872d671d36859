// `rope_mixed`: 2-D rotary position embedding with learnable mixed frequencies (Heo et al.,
// "Rotary Position Embedding for Vision Transformer", ECCV 2024: RoPE-Mixed; naver-ai/rope-vit's
// init_random_2d_freqs and compute_mixed_cis). Pair k of head h turns by
// x * fx[h, k] + y * fy[h, k], so each pair follows a learnt direction in the plane instead of one
// axis. Initialisation as naver's: magnitudes m_k = temperature^(-4k / head_dim) (k < head_dim / 4)
// for the first quarter of the pairs and again for the second, with a random angle phi_h per head:
//   fx = [m cos(phi), m cos(phi + pi/2)],   fy = [m sin(phi), m sin(phi + pi/2)].
// One module per block (the ViT makes one for each), so the frequencies are per block and head,
// as naver's (2, depth, heads * head_dim / 2) parameter; excluded from weight decay by the models.
#include <cmath>

#include <torch/torch.h>

#include "posenc/encoding_registry.h"

namespace posenc {
namespace {

class RopeMixedEncodingImpl : public RotaryEncodingImpl {
 public:
  RopeMixedEncodingImpl(const EncodingOptions& options, const EncodingContext& context)
      : RotaryEncodingImpl(options, context),
        normalized_(options.choice("coords") == "normalized") {
    const double temperature = options.number("temperature");
    TORCH_CHECK(head_dim() % 4 == 0, "rope_mixed starts from two quarters of axial-like "
                "frequencies per head: C / heads must be divisible by 4, got C = ", dim(),
                ", heads = ", heads(), " (head_dim ", head_dim(), ")");
    TORCH_CHECK(temperature > 1.0 && std::isfinite(temperature),
                "rope_mixed temperature (frequency base) must be > 1, got ", temperature);
    const int64_t quarter = head_dim() / 4;
    // (quarter): m_k = temperature^(-4k / head_dim)
    const auto magnitudes =
        torch::pow(temperature, torch::arange(quarter, torch::kFloat64) *
                                    (-4.0 / static_cast<double>(head_dim())));
    const auto phi = options.boolean("rotate")
                         ? torch::rand({heads(), 1}, torch::kFloat64) * (2 * M_PI)
                         : torch::zeros({heads(), 1}, torch::kFloat64);
    // (heads, head_dim / 2) each
    const auto fx =
        torch::cat({magnitudes * torch::cos(phi), magnitudes * torch::cos(phi + M_PI / 2)}, 1);
    const auto fy =
        torch::cat({magnitudes * torch::sin(phi), magnitudes * torch::sin(phi + M_PI / 2)}, 1);
    frequencies_ = register_parameter("freqs", torch::stack({fx, fy}).to(torch::kFloat32));
  }
  bool accepts_positions() const override { return true; }

 protected:
  // -> (1 or B, P, heads, head_dim / 2)
  torch::Tensor compute_angles(const TokenLayout& layout, const torch::TensorOptions& options,
                               const CoordinateAugmentation& augmentation) override {
    torch::Tensor x, y;  // (1 or B, P)
    if (layout.is_grid()) {
      std::tie(x, y) = grid_coordinates(layout.grid(), normalized_, options, augmentation);
    } else {
      TORCH_CHECK(!normalized_, "rope_mixed coords=normalized maps a token grid onto [-1, 1]; "
                  "explicit positions are used as given: scale them, and use coords=patch");
      check_position_shape(layout, 1, 2);
      const auto positions = layout.positions().to(options).select(2, 0);  // (B, P, 2)
      x = positions.select(2, 0);
      y = positions.select(2, 1);
    }
    // (B', P, 1, 1) * (heads, pairs) -> (B', P, heads, pairs)
    return x.unsqueeze(-1).unsqueeze(-1) * frequencies_[0] +
           y.unsqueeze(-1).unsqueeze(-1) * frequencies_[1];
  }

 private:
  bool normalized_;
  torch::Tensor frequencies_;  // (2, heads, head_dim / 2): fx, fy
};

}  // namespace

EncodingDefinition rope_mixed_definition() {
  return define_encoding<RopeMixedEncodingImpl>(
      "rope_mixed",
      "2-D rotary embedding, learnable mixed frequencies per block and head (Heo et al. 2024, "
      "RoPE-Mixed), in attention; any grid or positions (B, N, 1, 2).",
      with_coordinate_augmentation_options(
          {{"temperature", OptionType::Number, 10.0,
            "frequency base of the initial magnitudes temperature^(-4k / head_dim); naver's "
            "RoPE-Mixed 10"},
           {"rotate", OptionType::Boolean, true,
            "start each head's frequencies in a random direction (naver's rotate=True); false "
            "starts every head axial"},
           rotary_pairs_option("interleaved"),
           {"coords",
            OptionType::Choice,
            "patch",
            "grid coordinates: patch = row and column indices in patch units (naver); normalized = "
            "patch centres in [-1, 1] across the grid (DINOv3's convention)",
            {"patch", "normalized"}}}));
}

}  // namespace posenc
