// `relpos_mlp`: Swin Transformer V2's continuous relative position bias, added to the attention
// logits: an MLP (2 -> hidden, ReLU, -> heads) of each offset (dy, dx) between two grid tokens in
// log-spaced coordinates, 16 sigmoid(...) per head:
//   d' = 8 d / (n0 - 1),   d'' = sign(d') log2(|d'| + 1) / log2(8)
// with n0 the trained grid's height (for dy) or width (for dx), as Swin-V2 with its
// pretrained_window_size, so that an offset means the same at every grid and no table needs
// resizing; normalize=grid divides by the current grid instead (Swin-V2 without it). mode=cr is
// timm's RelPosMlp default ('cr'): sign(d) ln(|d| + 1) of the offsets in patch units, both layers
// biased, the MLP's output as it is. Prefix (class) tokens' logits get no bias, as timm's
// RelPosMlp. Submodules cpb_mlp.0 and cpb_mlp.2 as Swin-V2's.
#include <algorithm>
#include <cmath>

#include <torch/torch.h>

#include "posenc/encoding_registry.h"

namespace posenc {
namespace {

class ContinuousPositionBiasEncodingImpl : public AttentionBiasEncodingImpl {
 public:
  ContinuousPositionBiasEncodingImpl(const EncodingOptions& options,
                                     const EncodingContext& context)
      : AttentionBiasEncodingImpl(options, context),
        by_trained_grid_(options.choice("normalize") == "trained"),
        swin_(options.choice("mode") == "swin"),
        shared_(options.boolean("shared")) {
    const int64_t hidden = options.integer("hidden");
    TORCH_CHECK(hidden >= 1 && hidden <= 65536,
                "relpos_mlp hidden (MLP width) must be in 1..65536 (Swin-V2: 512), got ", hidden);
    first_ = torch::nn::Linear(2, hidden);
    second_ = torch::nn::Linear(torch::nn::LinearOptions(hidden, heads()).bias(!swin_));
    register_module("cpb_mlp", torch::nn::Sequential(first_, torch::nn::ReLU(), second_));
  }

  bool shared_across_blocks() const override { return shared_; }

 protected:
  // -> (heads, prefix + H*W, prefix + H*W)
  torch::Tensor compute_bias(const TokenGrid& grid, const torch::TensorOptions& options) override {
    const auto& reference = by_trained_grid_ ? context().trained_grid : grid;
    // (H*W) each: the row and column of every grid token
    const auto rows = torch::arange(grid.height, options).repeat_interleave(grid.width);
    const auto columns = torch::arange(grid.width, options).repeat(grid.height);
    const auto log_spaced = [this](const torch::Tensor& offset, int64_t extent) {
      if (!swin_)  // timm's 'cr': natural log of the offsets in patch units
        return torch::sign(offset) * torch::log1p(offset.abs());
      const auto scaled = offset * (8.0 / static_cast<double>(std::max<int64_t>(extent - 1, 1)));
      return torch::sign(scaled) * torch::log2(scaled.abs() + 1.0) / 3.0;  // log2(8) = 3
    };
    // (H*W, H*W, 2): (dy, dx) of query i and key j, log-spaced
    const auto offsets = torch::stack(
        {log_spaced(rows.unsqueeze(1) - rows.unsqueeze(0), reference.height),
         log_spaced(columns.unsqueeze(1) - columns.unsqueeze(0), reference.width)},
        -1);
    const auto hidden = torch::relu(first_->forward(offsets));
    // (H*W, H*W, heads) -> (heads, H*W, H*W)
    const auto output = second_->forward(hidden);
    const auto bias = (swin_ ? 16.0 * torch::sigmoid(output) : output).permute({2, 0, 1});
    const int64_t prefix = grid.prefix_tokens;
    if (prefix == 0)
      return bias;
    return torch::constant_pad_nd(bias, {prefix, 0, prefix, 0}, 0.0);
  }

 private:
  bool by_trained_grid_;
  bool swin_;  // Swin-V2's log2 coordinates and 16 sigmoid; else timm's 'cr'
  bool shared_;
  torch::nn::Linear first_{nullptr}, second_{nullptr};
};

}  // namespace

EncodingDefinition relpos_mlp_definition() {
  return define_encoding<ContinuousPositionBiasEncodingImpl>(
      "relpos_mlp",
      "Swin-V2's continuous relative position bias, in attention: an MLP of log-spaced offsets "
      "between grid tokens gives a (heads, N, N) logit term; any grid, no resizing; grids only.",
      {{"hidden", OptionType::Integer, 512, "hidden width of the MLP (Swin-V2 512)"},
       {"normalize",
        OptionType::Choice,
        "trained",
        "offsets divided by the trained grid's extent - 1 (Swin-V2 with pretrained_window_size: "
        "the same offset means the same at every grid) or by the current grid's (mode=swin)",
        {"trained", "grid"}},
       {"mode",
        OptionType::Choice,
        "swin",
        "swin = Swin-V2's log2-spaced normalised offsets and 16 sigmoid(MLP), no second-layer "
        "bias; cr = timm's RelPosMlp default: sign(d) ln(|d| + 1) in patch units, the MLP's "
        "output as it is, both layers biased",
        {"swin", "cr"}},
       {"shared", OptionType::Boolean, false,
        "one MLP for every block (timm's vit_srelpos_* shared_rel_pos) instead of one each"}});
}

}  // namespace posenc
