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

#include "posenc/models/patch_embedding.h"
#include "posenc/models/transformer_block.h"
#include "posenc/positional_encoding.h"

namespace posenc {

// Everything that defines a VisionTransformer's architecture. Stored in checkpoints as JSON, so
// a model can be rebuilt from its checkpoint alone.
struct VisionTransformerOptions {
  int64_t image_channels = 1;
  int64_t classes = 10;
  // The resolution the model is trained at: learned tables are sized for its token grid.
  int64_t image_height = 28;
  int64_t image_width = 28;
  int64_t patch_size = 4;
  int64_t dim = 96;
  int64_t depth = 6;
  int64_t heads = 3;
  double mlp_ratio = 4.0;
  double drop_path = 0.1;  // stochastic depth rate of the last block, linear from 0
  // Layer scale (timm's init_values): per-channel gammas on both residual branches of every
  // block, starting at this value; 0 = none (DeiT, CPVT). timm's RoPE ViTs use 1e-5.
  double layer_scale = 0.0;
  // "token": classify the class token (DeiT, CPVT); "gap": no class token, classify the global
  // average of the patch tokens (CPVT-GAP); "gap_with_token": keep a class token in the sequence
  // but classify the average of the patch tokens (timm's class_token=True, global_pool='avg',
  // fc_norm=False). The final norm comes before the pooling in all three.
  std::string head = "token";
  // timm's fc_norm: the final LayerNorm after the pooling (on the mean of the patch tokens)
  // instead of before it on every token, as timm's avg-pooled models by default and BEiT; a
  // module named fc_norm instead of norm. Only with the gap and gap_with_token heads.
  bool fc_norm = false;
  // The bias of the attention's input projection: "qkv" (timm's ViT, DeiT, CPVT), "none" (timm's
  // qkv_bias=False), "qv" (BEiT: q_bias and v_bias, keys without).
  std::string qkv_bias = "qkv";
  // Encodings by registry spec (e.g. "peg", "lff:F=64"); additive ones are added after the patch
  // embedding, conditional ones (PEG) applied after each block in `conditional_after_blocks`,
  // a rotary one (at most one: rope_axial, rope_mixed, rope_lff) turns the queries and keys of
  // every block's attention, an attention-bias one (at most one: relpos_bias, relpos_mlp) adds
  // to every block's logits (one module per block, or one shared).
  std::vector<std::string> encodings = {"peg"};
  // Block indices after which conditional encodings run; -1 means before the first block.
  // CPVT: {0}; its stronger variant: {0, 1, 2, 3, 4, 5}.
  std::vector<int64_t> conditional_after_blocks = {0};
  // Inputs whose size the patch size does not divide: false = error, true = zero-pad bottom/right.
  bool pad_to_patch = false;

  bool has_class_token() const { return head != "gap"; }
  int64_t prefix_tokens() const { return has_class_token() ? 1 : 0; }
  TokenGrid trained_grid() const;
  // Whether `encodings` holds a conditional one (PEG), which conditional_after_blocks places.
  bool has_conditional_encoding() const;
  // Throws with a message naming the field for any invalid value.
  void validate() const;

  nlohmann::json to_json() const;
  // Unknown keys are errors that list the valid ones; missing keys keep their defaults.
  static VisionTransformerOptions from_json(const nlohmann::json& json);
  // "tiny", "small", "micro", "nano"; throws listing them for another name.
  static VisionTransformerOptions preset(const std::string& name);
};

// A DeiT-style Vision Transformer (pre-norm blocks, stochastic depth) whose positional encodings
// plug in by name. Runs at any input size the patch size divides (or pads, if asked).
// Parameter names follow timm (cls_token, patch_embed.proj, blocks.N.*, norm, head) so
// checkpoints map to PyTorch's.
class VisionTransformerImpl : public torch::nn::Module {
 public:
  explicit VisionTransformerImpl(VisionTransformerOptions options);

  // images: (B, image_channels, H, W) -> logits (B, classes)
  torch::Tensor forward(const torch::Tensor& images);

  // images: (B, image_channels, H, W) -> final tokens (B, prefix + H/p * W/p, dim), after norm
  // (before any: with fc_norm, the norm comes after the pooling)
  torch::Tensor features(const torch::Tensor& images);

  // Native-resolution batches: images of their own sizes and aspect ratios, each
  // (image_channels, H_b, W_b), in one batch. Each image's patch tokens sit on its own grid,
  // padded after its tokens to the longest image's (TokenLayout::of_grids); attention never
  // looks at padding, the gap heads average each image's own patch tokens, and every encoding
  // works on each image's own grid, so each image gets the logits it would get alone.
  // -> logits (B, classes)
  torch::Tensor forward(const std::vector<torch::Tensor>& images);
  // -> final tokens (B, N, dim) (padding junk), and their layout
  std::pair<torch::Tensor, TokenLayout> features(const std::vector<torch::Tensor>& images);

  const VisionTransformerOptions& options() const { return options_; }
  // The parameters split for AdamW: weight decay applies to `decayed`, not to norms, biases, the
  // class token and positional-encoding parameters (as the official DeiT/CPVT code).
  struct WeightDecayGroups {
    std::vector<torch::Tensor> decayed;
    std::vector<torch::Tensor> not_decayed;
  };
  WeightDecayGroups weight_decay_groups() const;

  // Inspection (posenc attention, posenc probe).
  // From the next forward on, each block keeps its attention probabilities.
  void record_attention(bool on);
  // One (B, heads, N, N) tensor per block, from the last forward with record_attention(true).
  std::vector<torch::Tensor> last_attention();
  // Throws, saying what to do, when forward would refuse images of height x width (an empty size,
  // or one the patch size does not divide while padding is off).
  void check_image_size(int64_t height, int64_t width) const;
  // Zero-pads inputs the patch size does not divide from now on (or stops): the weights do not
  // depend on it, so a model trained without padding can be evaluated with it.
  void set_pad_to_patch(bool pad);
  // The grid the patch tokens of `images` (B, C_in, H, W) form; prefix tokens included.
  TokenGrid grid_for(const torch::Tensor& images) const;
  // What the model's positional encoding tells each patch token at the grid of `images`:
  // (H*W, dim). With additive encodings, the sum of their embeddings (the images only set the
  // grid). Otherwise the first conditional encoding (PEG): what it adds to the tokens, averaged
  // over the images, so that what a token shows averages out and where it sits remains.
  // Throws for a model without positional encoding.
  torch::Tensor positional_signal(const torch::Tensor& images);
  // Whether an additive encoding other than `none` is present.
  bool has_additive_encoding() const;

 private:
  // images (B, C_in, H, W) -> (tokens (B, N, dim) with prefix and additive encodings, grid)
  std::pair<torch::Tensor, TokenGrid> embed(const torch::Tensor& images);
  // images (C_in, H_b, W_b) each -> (tokens (B, N, dim), padded, their batch of grids)
  std::pair<torch::Tensor, TokenLayout> embed(const std::vector<torch::Tensor>& images);
  torch::Tensor apply_conditional(const torch::Tensor& tokens, const TokenLayout& layout,
                                  int64_t after_block);
  // block `block` on tokens (B, N, dim) of `layout`, its rotary (at the step's coordinate
  // augmentation) and bias encodings (if any) in attention; key_mask (B, N) or undefined
  torch::Tensor run_block(size_t block, const torch::Tensor& tokens, const TokenLayout& layout,
                          const CoordinateAugmentation& augmentation,
                          const torch::Tensor& key_mask);
  // embedded tokens (B, N, dim) -> after every block and the final norm (unless fc_norm)
  torch::Tensor run_blocks(torch::Tensor tokens, const TokenLayout& layout);
  // final tokens (B, N, dim) -> logits (B, classes) by the head
  torch::Tensor classify(const torch::Tensor& tokens, const TokenLayout& layout);

  VisionTransformerOptions options_;
  PatchEmbedding patch_embed_{nullptr};
  torch::Tensor cls_token_;  // (1, 1, dim), undefined for the GAP head
  torch::nn::ModuleList additive_encodings_{nullptr};
  // one conditional encoding module per (encoding, position) pair, in conditional_slots_ order
  torch::nn::ModuleList conditional_encodings_{nullptr};
  std::vector<int64_t> conditional_slots_;  // the block index each conditional module follows
  // a rotary encoding's module for each block, in block order; empty without one
  torch::nn::ModuleList rotary_encodings_{nullptr};
  // an attention-bias encoding's module for each block, or one for all (shared); empty without
  bool bias_shared_ = false;
  torch::nn::ModuleList bias_encodings_{nullptr};
  torch::nn::ModuleList blocks_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};  // named "norm", or "fc_norm" after the pooling
  torch::nn::Linear head_{nullptr};
};

TORCH_MODULE(VisionTransformer);

}  // namespace posenc
