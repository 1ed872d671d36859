// `none`: no positional information at all; the tokens pass through unchanged. The baseline that
// shows what position information is worth (CPVT: DeiT-tiny without PE loses about 4 points).
#include <torch/torch.h>

#include "posenc/encoding_registry.h"

namespace posenc {
namespace {

class NoEncodingImpl : public AdditiveEncodingImpl {
 public:
  NoEncodingImpl(const EncodingOptions& options, const EncodingContext& context)
      : AdditiveEncodingImpl(options, context) {}
  bool accepts_positions() const override { return true; }

 protected:
  torch::Tensor compute_embedding(const TokenLayout& layout,
                                  const torch::TensorOptions& options) override {
    // (1, N, C) of zeros, which broadcasts over any batch.
    return torch::zeros({1, layout.total_tokens(), dim()}, options);
  }
};

}  // namespace

EncodingDefinition none_definition() {
  return define_encoding<NoEncodingImpl>("none", "No positional encoding (tokens unchanged).", {});
}

}  // namespace posenc
