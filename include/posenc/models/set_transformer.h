#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <nlohmann/json.hpp>

#include "posenc/models/transformer_block.h"

namespace posenc {

// Everything that defines a SetTransformer; stored in checkpoints as JSON.
struct SetTransformerOptions {
  int64_t content_dim = 8;      // D: numbers of content per token
  int64_t classes = 8;          // predicted per token
  int64_t position_groups = 1;  // G
  int64_t position_values = 2;  // M
  int64_t dim = 64;
  int64_t depth = 4;
  int64_t heads = 4;
  double mlp_ratio = 2.0;
  double drop_path = 0.0;
  // Encodings that read continuous positions (B, N, G, M), by registry spec: additive ones, added
  // to the tokens: lff (any G, M; its G and M are set from position_groups/values unless given),
  // sincos2d (one share per coordinate), learned_quantized, lff:variant=mlp (MLP on raw
  // coordinates), none; and at most one rotary one, turning every block's queries and keys (one
  // module per block): rope_lff (any G, M, set from the model's as lff's), rope_axial and
  // rope_mixed (G = 1, M = 2).
  std::vector<std::string> encodings = {"lff"};

  // Throws with a message naming the field for any invalid value.
  void validate() const;
  nlohmann::json to_json() const;
  // Unknown keys are errors that list the valid ones; missing keys keep their defaults.
  static SetTransformerOptions from_json(const nlohmann::json& json);
};

// A Transformer encoder over sets of tokens that sit at continuous positions rather than on a
// grid: points, bounding boxes. Each token's content is projected to `dim` channels, its
// positional encoding added, then pre-norm blocks (as in the ViT) and a per-token classifier.
// No token order is assumed: permuting the tokens permutes the outputs.
class SetTransformerImpl : public torch::nn::Module {
 public:
  explicit SetTransformerImpl(SetTransformerOptions options);

  // content (B, K, D), positions (B, K, G, M), mask (B, K) bool or undefined (all real)
  // -> logits (B, K, classes). Padding tokens are attended by no token; their logits are junk.
  torch::Tensor forward(const torch::Tensor& content, const torch::Tensor& positions,
                        const torch::Tensor& mask = {});

  // The sum of the additive encodings' embeddings at `positions` (B, K, G, M): (B, K, dim)
  // (zeros when the only encoding is rotary).
  torch::Tensor positional_embedding(const torch::Tensor& positions);

  const SetTransformerOptions& options() const { return options_; }
  // whether positions reach the tokens only inside attention (a rotary encoding and no added
  // one besides `none`): positional_embedding() is then zeros and measures nothing
  bool positions_only_in_attention() const;
  // AdamW groups as the ViT's: no weight decay on norms, biases and encoding parameters.
  std::pair<std::vector<torch::Tensor>, std::vector<torch::Tensor>> weight_decay_groups() const;

 private:
  void check_inputs(const torch::Tensor& content, const torch::Tensor& positions,
                    const torch::Tensor& mask) const;

  SetTransformerOptions options_;
  torch::nn::Linear content_embed_{nullptr};
  torch::nn::ModuleList encodings_{nullptr};  // the additive ones
  // a rotary encoding's module for each block, in block order; empty without one
  torch::nn::ModuleList rotary_encodings_{nullptr};
  torch::nn::ModuleList blocks_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
  torch::nn::Linear head_{nullptr};
};

TORCH_MODULE(SetTransformer);

}  // namespace posenc
