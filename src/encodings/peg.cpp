// `peg`: the Position Encoding Generator of CPVT (Chu et al.). The patch tokens are put back on
// their grid, a depthwise k x k convolution (bias, stride 1) of each token's neighbourhood is added
// to them as a residual, and prefix tokens pass through untouched:
//   grid' = grid + DWConv_k(grid)
// Zero padding (the paper's default) is what tells tokens near a border where they are; circular
// padding removes that cue (ablation), replicate padding weakens it. Works on any H x W.
// Init as the official code: weight ~ N(0, sqrt(2 / fan_out)), fan_out = k*k, bias 0.
#include <cmath>

#include <torch/torch.h>

#include "posenc/encoding_registry.h"

namespace posenc {
namespace {

namespace F = torch::nn::functional;

class PositionEncodingGeneratorImpl : public PositionalEncodingImpl {
 public:
  PositionEncodingGeneratorImpl(const EncodingOptions& options, const EncodingContext& context)
      : PositionalEncodingImpl(options, context),
        kernel_size_(options.integer("k")),
        padding_(options.choice("padding")) {
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
  torch::Tensor transform(const torch::Tensor& tokens, const TokenLayout& layout) override {
    const auto& grid = layout.grid();
    const int64_t batch = tokens.size(0);
    const int64_t channels = tokens.size(2);
    auto prefix = tokens.narrow(1, 0, grid.prefix_tokens);  // (B, prefix, C)
    // (B, H*W, C) -> (B, C, H, W), a channels-last view without a copy
    auto image = tokens.narrow(1, grid.prefix_tokens, grid.grid_tokens())
                     .reshape({batch, grid.height, grid.width, channels})
                     .permute({0, 3, 1, 2});
    const int64_t half = kernel_size_ / 2;
    torch::Tensor convolved;
    if (padding_ == "zeros") {
      convolved = F::conv2d(image, weight_,
                            F::Conv2dFuncOptions().bias(bias_).padding(half).groups(channels));
    } else {
      convolved = F::conv2d(pad_by_index(image, half), weight_,
                            F::Conv2dFuncOptions().bias(bias_).groups(channels));
    }
    // (B, C, H, W) -> (B, H*W, C)
    auto updated = (image + convolved).permute({0, 2, 3, 1}).reshape({batch, -1, channels});
    return torch::cat({prefix, updated}, 1);
  }

 private:
  // Circular or replicate padding by gathering rows and columns, which, unlike F::pad, works for
  // any pad width on any grid (a 1x1 grid with k = 7 included).
  // image: (B, C, H, W) -> (B, C, H + 2*half, W + 2*half)
  torch::Tensor pad_by_index(const torch::Tensor& image, int64_t half) const {
    auto source_index = [&](int64_t length) {
      auto index = torch::arange(-half, length + half,
                                 torch::TensorOptions(torch::kLong).device(image.device()));
      return padding_ == "circular" ? torch::remainder(index, length)
                                    : torch::clamp(index, 0, length - 1);
    };
    return image.index_select(2, source_index(image.size(2)))
        .index_select(3, source_index(image.size(3)));
  }

  int64_t kernel_size_;
  std::string padding_;
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
