#pragma once

#include <string>
#include <utility>

#include <torch/types.h>

namespace posenc {

// Which channels of a head turn together as one pair.
enum class RotaryPairs {
  Interleaved,  // (2i, 2i+1): naver's RoPE-ViT, timm's apply_rot_embed_cat(half=False)
  Half,         // (i, i + head_dim/2): rotate-half, as EVA-02, timm's eva.py and DINOv3
};

std::string to_string(RotaryPairs pairs);
// "interleaved" or "half"; throws naming the valid values otherwise.
RotaryPairs parse_rotary_pairs(const std::string& name);

// The rotation of a rotary positional encoding, applied to queries or keys:
//   out[prefix tokens]      = tokens[prefix tokens]                    (never rotated)
//   out[positioned token p] = each pair (a, b) of each head turned by angles[., p, head, pair]:
//                             (a cos - b sin, a sin + b cos)
// tokens: (B, N, C), C = heads * head_dim; angles: (T, N - prefix, heads, head_dim / 2) with
// T = 1 (the same angles for every image: a grid) or T = B (per-image positions), in radians.
// returns (B, N, C). Differentiable in tokens and angles.
//
// rotate_pairs runs the fused kernel when it applies (fused_kernels_enabled(), CPU, float32): one
// pass that reads tokens in place (any batch and token strides with channels contiguous, such as
// the q and k views of a fused qkv product; else one copy) and writes only the output; its
// backward reads grad_output and tokens once and gives both gradients. The cosines and sines of
// the (T, P, heads, pairs) angles are computed once per call, a table the size of one image's
// head channels. Not twice differentiable. Otherwise, and in rotate_pairs_reference, the
// composite of LibTorch ops in real arithmetic (no complex tensors, so models stay exportable).
torch::Tensor rotate_pairs(const torch::Tensor& tokens, const torch::Tensor& angles,
                           int64_t prefix, RotaryPairs pairs);
torch::Tensor rotate_pairs_fused(const torch::Tensor& tokens, const torch::Tensor& angles,
                                 int64_t prefix, RotaryPairs pairs);
torch::Tensor rotate_pairs_reference(const torch::Tensor& tokens, const torch::Tensor& angles,
                                     int64_t prefix, RotaryPairs pairs);

// The queries and the keys of one attention block turned by the same angles: as rotate_pairs on
// each, with the fused kernel's cos and sin tables made once for both and one autograd node.
std::pair<torch::Tensor, torch::Tensor> rotate_queries_and_keys(const torch::Tensor& queries,
                                                                const torch::Tensor& keys,
                                                                const torch::Tensor& angles,
                                                                int64_t prefix, RotaryPairs pairs);

// Whether rotate_pairs_fused accepts these tensors (CPU, float32).
bool rotate_pairs_fused_applies(const torch::Tensor& tokens, const torch::Tensor& angles);

}  // namespace posenc
