#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "posenc/positional_encoding.h"

namespace posenc {

// Which of the queries, keys and values the attention's input projection adds a bias to.
enum class QkvBias {
  All,            // "qkv": qkv.bias (3C), timm's ViT (qkv_bias=True)
  None,           // "none": no bias, timm's qkv_bias=False (its relpos ViTs)
  QueryAndValue,  // "qv": q_bias and v_bias (C each), keys unbiased: BEiT's (and timm's Beit)
};
// "qkv", "none", "qv"; throws naming them for anything else.
QkvBias parse_qkv_bias(const std::string& name);

// Multi-head self-attention (ViT): one qkv projection, scaled dot-product per head, output proj.
class MultiHeadSelfAttentionImpl : public torch::nn::Module {
 public:
  MultiHeadSelfAttentionImpl(int64_t dim, int64_t heads, QkvBias qkv_bias = QkvBias::All);
  // tokens (B, N, C) -> (B, N, C). key_mask (B, N) bool, optional: false marks padding tokens
  // of a batch of sets of different sizes, which no token attends to. `rotate` turns the
  // queries and keys (a rotary encoding). logit_bias (heads, N, N), optional: added to every
  // sample's logits (an attention-bias encoding); or (B, heads, N, N), one per sample.
  torch::Tensor forward(const torch::Tensor& tokens, const torch::Tensor& key_mask = {},
                        const QueryKeyRotation& rotate = {},
                        const torch::Tensor& logit_bias = {});
  // attention probabilities of the last forward with record_attention(true): (B, heads, N, N)
  const torch::Tensor& last_attention() const { return last_attention_; }
  void record_attention(bool on) { record_attention_ = on; }

 private:
  // (3C): qkv's bias, or BEiT's q_bias, zeros, v_bias; undefined without
  torch::Tensor qkv_bias() const;

  int64_t heads_;
  double scale_;
  torch::nn::Linear qkv_{nullptr};
  torch::Tensor query_bias_, value_bias_;  // BEiT's q_bias, v_bias (QkvBias::QueryAndValue)
  torch::nn::Linear proj_{nullptr};
  bool record_attention_ = false;
  torch::Tensor last_attention_;
};
TORCH_MODULE(MultiHeadSelfAttention);

// Two-layer MLP with GELU (ViT): fc1 (C -> hidden), GELU, fc2 (hidden -> C).
class FeedForwardImpl : public torch::nn::Module {
 public:
  FeedForwardImpl(int64_t dim, int64_t hidden);
  // (..., C) -> (..., C)
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Linear fc1_{nullptr};
  torch::nn::Linear fc2_{nullptr};
};
TORCH_MODULE(FeedForward);

// Layer scale (CaiT; timm's init_values): a learnt per-channel factor on a residual branch,
// (..., C) * gamma (C), gamma starting at `init_value`.
class LayerScaleImpl : public torch::nn::Module {
 public:
  LayerScaleImpl(int64_t dim, double init_value);
  torch::Tensor forward(const torch::Tensor& x) { return x * gamma_; }

 private:
  torch::Tensor gamma_;
};
TORCH_MODULE(LayerScale);

// A pre-norm Transformer encoder block (DeiT):
//   x = x + DropPath(Attention(LayerNorm(x)));  x = x + DropPath(MLP(LayerNorm(x)))
// DropPath (stochastic depth) zeroes a sample's residual branch with probability drop_path in
// training and rescales the kept ones by 1 / (1 - drop_path). With layer_scale > 0 each branch is
// multiplied by its own per-channel gammas first (ls1, ls2, timm's names), starting at that value.
class TransformerBlockImpl : public torch::nn::Module {
 public:
  TransformerBlockImpl(int64_t dim, int64_t heads, double mlp_ratio, double drop_path,
                       double layer_scale = 0.0, QkvBias qkv_bias = QkvBias::All);
  // tokens (B, N, C) -> (B, N, C); key_mask, rotate and logit_bias as in MultiHeadSelfAttention
  torch::Tensor forward(const torch::Tensor& tokens, const torch::Tensor& key_mask = {},
                        const QueryKeyRotation& rotate = {},
                        const torch::Tensor& logit_bias = {});
  MultiHeadSelfAttention& attention() { return attn_; }

 private:
  torch::Tensor drop_path(const torch::Tensor& branch) const;

  double drop_path_;
  torch::nn::LayerNorm norm1_{nullptr};
  MultiHeadSelfAttention attn_{nullptr};
  torch::nn::LayerNorm norm2_{nullptr};
  FeedForward mlp_{nullptr};
  LayerScale ls1_{nullptr}, ls2_{nullptr};  // null without layer scale
};
TORCH_MODULE(TransformerBlock);

// `depth` blocks whose stochastic-depth rate grows linearly from 0 at the first block to
// `drop_path` at the last (DeiT). The caller initialises them (initialise_like_timm) once the
// rest of its model is built, so a seed draws the same weights as it always did. layer_scale as
// TransformerBlock's, qkv_bias as MultiHeadSelfAttention's.
torch::nn::ModuleList make_transformer_blocks(int64_t depth, int64_t dim, int64_t heads,
                                              double mlp_ratio, double drop_path,
                                              double layer_scale = 0.0,
                                              QkvBias qkv_bias = QkvBias::All);

// timm's ViT initialisation of every Linear and LayerNorm in `module`: weights N(0, 0.02) (timm's
// truncation at +-2 std is inert at this std), biases 0, norms 1 and 0.
void initialise_like_timm(torch::nn::Module& module);

}  // namespace posenc
