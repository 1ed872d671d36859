#include "posenc/models/transformer_block.h"

#include <cmath>
#include <limits>
#include <tuple>

#include <c10/util/Exception.h>
#include <torch/torch.h>

#include "posenc/kernels/linear.h"

namespace posenc {

void initialise_like_timm(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& child : module.modules(/*include_self=*/true)) {
    if (auto* linear = child->as<torch::nn::Linear>()) {
      linear->weight.normal_(0.0, 0.02);
      if (linear->bias.defined())
        linear->bias.zero_();
    } else if (auto* norm = child->as<torch::nn::LayerNorm>()) {
      norm->weight.fill_(1.0);
      norm->bias.zero_();
    }
  }
}

QkvBias parse_qkv_bias(const std::string& name) {
  if (name == "qkv")
    return QkvBias::All;
  if (name == "none")
    return QkvBias::None;
  TORCH_CHECK(name == "qv", "qkv_bias must be 'qkv' (a bias on queries, keys and values: timm's "
              "ViT), 'none' (timm's qkv_bias=False) or 'qv' (BEiT's q_bias and v_bias), got '",
              name, "'");
  return QkvBias::QueryAndValue;
}

MultiHeadSelfAttentionImpl::MultiHeadSelfAttentionImpl(int64_t dim, int64_t heads,
                                                       QkvBias qkv_bias)
    : heads_(heads), scale_(1.0 / std::sqrt(static_cast<double>(dim / heads))) {
  TORCH_CHECK(heads >= 1 && dim % heads == 0,
              "attention: dim must be divisible by heads, got dim = ", dim, ", heads = ", heads);
  qkv_ = register_module(
      "qkv", torch::nn::Linear(torch::nn::LinearOptions(dim, 3 * dim)
                                   .bias(qkv_bias == QkvBias::All)));
  if (qkv_bias == QkvBias::QueryAndValue) {
    // zeros, as BEiT's (initialise_like_timm leaves them)
    query_bias_ = register_parameter("q_bias", torch::zeros({dim}));
    value_bias_ = register_parameter("v_bias", torch::zeros({dim}));
  }
  proj_ = register_module("proj", torch::nn::Linear(dim, dim));
}

torch::Tensor MultiHeadSelfAttentionImpl::qkv_bias() const {
  if (!query_bias_.defined())
    return qkv_->bias;  // undefined for QkvBias::None
  return torch::cat({query_bias_, torch::zeros_like(query_bias_), value_bias_});
}

torch::Tensor MultiHeadSelfAttentionImpl::forward(const torch::Tensor& tokens,
                                                  const torch::Tensor& key_mask,
                                                  const QueryKeyRotation& rotate,
                                                  const torch::Tensor& logit_bias) {
  const int64_t batch = tokens.size(0), count = tokens.size(1), dim = tokens.size(2);
  // (B, N, 3C) -> q, k, v (B, N, C), views
  const auto qkv =
      posenc::linear(tokens, qkv_->weight, qkv_bias()).reshape({batch, count, 3, dim});
  auto q = qkv.select(2, 0), k = qkv.select(2, 1), v = qkv.select(2, 2);
  if (rotate)
    std::tie(q, k) = rotate(q, k);
  // (B, N, C) -> (B, heads, N, C/heads)
  const auto split_heads = [&](const torch::Tensor& x) {
    return x.reshape({batch, count, heads_, dim / heads_}).transpose(1, 2);
  };
  q = split_heads(q);
  k = split_heads(k);
  v = split_heads(v);
  auto scores = torch::matmul(q, k.transpose(-2, -1)) * scale_;  // (B, h, N, N)
  if (logit_bias.defined()) {
    const bool per_image = logit_bias.dim() == 4 && logit_bias.size(0) == batch;
    TORCH_CHECK((logit_bias.dim() == 3 || per_image) && logit_bias.size(-3) == heads_ &&
                    logit_bias.size(-2) == count && logit_bias.size(-1) == count,
                "attention logit_bias must be (heads, N, N) = (", heads_, ", ", count, ", ",
                count, ") or (B, heads, N, N) with B = ", batch, ", got ", logit_bias.sizes());
    scores.add_(logit_bias);  // in place: no second (B, heads, N, N)
  }
  if (key_mask.defined()) {
    TORCH_CHECK(key_mask.dim() == 2 && key_mask.size(0) == batch && key_mask.size(1) == count &&
                    key_mask.scalar_type() == torch::kBool,
                "attention key_mask must be (B, N) = (", batch, ", ", count,
                ") bool, got ", key_mask.sizes(), " ", key_mask.scalar_type());
    // (B, N) -> (B, 1, 1, N): padding keys get no weight
    scores = scores.masked_fill(key_mask.logical_not().view({batch, 1, 1, count}),
                                -std::numeric_limits<float>::infinity());
  }
  auto attention = torch::softmax(scores, -1);
  if (record_attention_)
    last_attention_ = attention.detach();
  // (B, h, N, C/h) -> (B, N, C)
  auto mixed = torch::matmul(attention, v).transpose(1, 2).reshape({batch, count, dim});
  return posenc::linear(mixed, proj_->weight, proj_->bias);
}

FeedForwardImpl::FeedForwardImpl(int64_t dim, int64_t hidden) {
  fc1_ = register_module("fc1", torch::nn::Linear(dim, hidden));
  fc2_ = register_module("fc2", torch::nn::Linear(hidden, dim));
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) {
  auto hidden = torch::gelu(posenc::linear(x, fc1_->weight, fc1_->bias));
  return posenc::linear(hidden, fc2_->weight, fc2_->bias);
}

LayerScaleImpl::LayerScaleImpl(int64_t dim, double init_value) {
  gamma_ = register_parameter("gamma", torch::full({dim}, init_value));
}

TransformerBlockImpl::TransformerBlockImpl(int64_t dim, int64_t heads, double mlp_ratio,
                                           double drop_path, double layer_scale, QkvBias qkv_bias)
    : drop_path_(drop_path) {
  TORCH_CHECK(drop_path >= 0.0 && drop_path < 1.0, "drop_path must be in [0, 1), got ", drop_path);
  TORCH_CHECK(layer_scale >= 0.0 && std::isfinite(layer_scale),
              "layer_scale must be 0 (none) or a positive initial gamma, got ", layer_scale);
  norm1_ =
      register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-6)));
  attn_ = register_module("attn", MultiHeadSelfAttention(dim, heads, qkv_bias));
  norm2_ =
      register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-6)));
  mlp_ = register_module("mlp", FeedForward(dim, static_cast<int64_t>(dim * mlp_ratio)));
  if (layer_scale > 0.0) {
    ls1_ = register_module("ls1", LayerScale(dim, layer_scale));
    ls2_ = register_module("ls2", LayerScale(dim, layer_scale));
  }
}

torch::nn::ModuleList make_transformer_blocks(int64_t depth, int64_t dim, int64_t heads,
                                              double mlp_ratio, double drop_path,
                                              double layer_scale, QkvBias qkv_bias) {
  torch::nn::ModuleList blocks;
  for (int64_t b = 0; b < depth; ++b) {
    const double rate =
        depth > 1 ? drop_path * static_cast<double>(b) / static_cast<double>(depth - 1) : 0.0;
    blocks->push_back(TransformerBlock(dim, heads, mlp_ratio, rate, layer_scale, qkv_bias));
  }
  return blocks;
}

torch::Tensor TransformerBlockImpl::drop_path(const torch::Tensor& branch) const {
  if (!is_training() || drop_path_ == 0.0)
    return branch;
  const double keep = 1.0 - drop_path_;
  // one Bernoulli draw per sample: (B, 1, 1)
  auto mask = torch::empty({branch.size(0), 1, 1}, branch.options()).bernoulli_(keep);
  return branch * mask / keep;
}

torch::Tensor TransformerBlockImpl::forward(const torch::Tensor& tokens,
                                            const torch::Tensor& key_mask,
                                            const QueryKeyRotation& rotate,
                                            const torch::Tensor& logit_bias) {
  auto attended = attn_->forward(norm1_->forward(tokens), key_mask, rotate, logit_bias);
  if (ls1_)
    attended = ls1_->forward(attended);
  const auto x = tokens + drop_path(attended);
  auto transformed = mlp_->forward(norm2_->forward(x));
  if (ls2_)
    transformed = ls2_->forward(transformed);
  return x + drop_path(transformed);
}

}  // namespace posenc
