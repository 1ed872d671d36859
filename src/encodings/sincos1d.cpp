// `sincos1d`: the fixed sinusoidal encoding of Vaswani et al. over the flattened (row-major) patch
// index, as in the original Transformer applied to a ViT's token sequence. It ignores the 2-D
// structure: neighbours in a column are W indices apart. Prefix tokens get no encoding.
#include <torch/torch.h>

#include "encodings/sinusoid.h"
#include "posenc/encoding_registry.h"

namespace posenc {
namespace {

class SinCos1dEncodingImpl : public AdditiveEncodingImpl {
 public:
  SinCos1dEncodingImpl(const EncodingOptions& options, const EncodingContext& context)
      : AdditiveEncodingImpl(options, context), temperature_(options.number("temperature")) {
    TORCH_CHECK(dim() % 2 == 0,
                "sincos1d needs an even number of channels (sin and cos halves), "
                "got C = ",
                dim());
    TORCH_CHECK(temperature_ > 1.0, "sincos1d temperature must be > 1, got ", temperature_);
  }
  bool accepts_positions() const override { return true; }

 protected:
  torch::Tensor compute_embedding(const TokenLayout& layout,
                                  const torch::TensorOptions& options) override {
    if (layout.is_grid()) {
      // index: (H*W) -> PE (1, H*W, C)
      auto index = torch::arange(layout.positioned_tokens(), options);
      return with_zero_prefix(sinusoid(index, dim(), temperature_).unsqueeze(0),
                              layout.prefix_tokens());
    }
    check_position_shape(layout, 1, 1);
    // positions (B, P, 1, 1) -> PE (B, P, C)
    auto values = layout.positions().to(options).flatten(1);
    return with_zero_prefix(sinusoid(values, dim(), temperature_), layout.prefix_tokens());
  }

 private:
  double temperature_;
};

}  // namespace

EncodingDefinition sincos1d_definition() {
  return define_encoding<SinCos1dEncodingImpl>(
      "sincos1d",
      "Fixed sinusoids of the flattened patch index (Vaswani et al.); positions (B, N, 1, 1).",
      {{"temperature", OptionType::Number, 10000.0,
        "base of the geometric frequency progression w_k = temperature^(-2k/C)"}});
}

}  // namespace posenc
