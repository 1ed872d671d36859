// `learned1d`: the learned absolute position table of ViT/DeiT (Embed-1D in the LFF paper): one
// trainable vector per token of the trained grid, prefix tokens included, added to the tokens.
// At any other grid the table is resampled bicubically as timm's resample_abs_pos_embed does
// (antialiased when shrinking), keeping the prefix rows; the trained grid returns the table itself.
#include <torch/torch.h>

#include "posenc/encoding_registry.h"
#include "posenc/grid_table_resampling.h"

namespace posenc {
namespace {

class Learned1dEncodingImpl : public AdditiveEncodingImpl {
 public:
  Learned1dEncodingImpl(const EncodingOptions& options, const EncodingContext& context)
      : AdditiveEncodingImpl(options, context), antialias_(options.boolean("antialias")) {
    const double init_std = options.number("init_std");
    TORCH_CHECK(init_std >= 0.0, "learned1d init_std must be >= 0, got ", init_std);
    // pos_embed: (1, prefix + H0*W0, C). timm draws it from a normal truncated at +-2, which for
    // std 0.02 is a plain normal.
    pos_embed_ = register_parameter(
        "pos_embed", torch::randn({1, context.trained_grid.total_tokens(), dim()}) * init_std);
  }

 protected:
  torch::Tensor compute_embedding(const TokenLayout& layout, const torch::TensorOptions&) override {
    // (1, prefix + H*W, C)
    return resample_grid_table(pos_embed_, context().trained_grid, layout.grid(), antialias_);
  }

 private:
  bool antialias_;
  torch::Tensor pos_embed_;
};

}  // namespace

EncodingDefinition learned1d_definition() {
  return define_encoding<Learned1dEncodingImpl>(
      "learned1d",
      "Learned table over the trained grid's tokens (ViT/DeiT, Embed-1D); bicubic resampling "
      "at other grids, prefix rows kept.",
      {{"init_std", OptionType::Number, 0.02, "standard deviation of the initial table"},
       {"antialias", OptionType::Boolean, true,
        "antialias the bicubic resampling when the grid shrinks (timm's default)"}});
}

}  // namespace posenc
