// `peg`: the Position Encoding Generator of CPVT (Chu et al.). The patch tokens are put back on
// their grid, a depthwise k x k convolution (bias, stride 1) of each token's neighbourhood is added
// to them as a residual, and prefix tokens pass through untouched:
//   grid' = grid + DWConv_k(grid)
// Zero padding (the paper's default) is what tells tokens near a border where they are; circular
// padding removes that cue (ablation), replicate padding weakens it. Works on any H x W.
// The operation itself is peg_conv (posenc/kernels/peg_conv.h): a fused CPU kernel for float32,
// the composite LibTorch reference elsewhere.
// Init as the official code: weight ~ N(0, sqrt(2 / fan_out)), fan_out = k*k, bias 0.
#include <cmath>

#include <torch/torch.h>

#include "posenc/encoding_registry.h"
#include "posenc/kernels/peg_conv.h"

namespace posenc {
namespace {

class PositionEncodingGeneratorImpl : public PositionalEncodingImpl {
 public:
  PositionEncodingGeneratorImpl(const EncodingOptions& options, const EncodingContext& context)
      : PositionalEncodingImpl(options, context),
        kernel_size_(options.integer("k")),
        padding_(parse_peg_padding(options.choice("padding"))) {
    TORCH_CHECK(kernel_size_ >= 1 && kernel_size_ % 2 == 1,
                "peg kernel size k must be odd and >= 1 so the grid keeps its size, got k = ",
                kernel_size_);
    // weight: (C, 1, k, k), one k x k filter per channel
    weight_ = register_parameter(
        "weight", torch::randn({dim(), 1, kernel_size_, kernel_size_}) *
                      std::sqrt(2.0 / static_cast<double>(kernel_size_ * kernel_size_)));
    if (options.boolean("bias"))
      bias_ = register_parameter("bias", torch::zeros({dim()}));
  }

  EncodingKind kind() const override { return EncodingKind::Conditional; }

 protected:
  // tokens: (B, N, C) -> (B, N, C)
  torch::Tensor transform(const torch::Tensor& tokens, const TokenLayout& layout) override {
    return peg_conv(tokens, weight_, bias_, layout.grid(), padding_);
  }

 private:
  int64_t kernel_size_;
  PegPadding padding_;
  torch::Tensor weight_;
  torch::Tensor bias_;  // undefined when bias=false
};

}  // namespace

EncodingDefinition peg_definition() {
  return define_encoding<PositionEncodingGeneratorImpl>(
      "peg",
      "Position Encoding Generator (CPVT): tokens + depthwise k x k conv over the token grid; "
      "prefix tokens untouched.",
      {{"k", OptionType::Integer, 3, "kernel size (odd)"},
       {"padding",
        OptionType::Choice,
        "zeros",
        "zeros (the paper: borders reveal absolute position), circular (no border cue, "
        "ablation) or replicate",
        {"zeros", "circular", "replicate"}},
       {"bias", OptionType::Boolean, true, "learn a per-channel bias"}});
}

}  // namespace posenc
