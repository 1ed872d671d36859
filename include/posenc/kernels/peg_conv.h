#pragma once

#include <string>

#include <torch/types.h>

#include "posenc/token_layout.h"

namespace posenc {

// How the PEG convolution sees beyond the grid's border.
enum class PegPadding {
  Zeros,      // the paper: the border tells tokens where they are
  Circular,   // wrap around: no border cue (ablation)
  Replicate,  // repeat the edge token
};

std::string to_string(PegPadding padding);
// "zeros", "circular" or "replicate"; throws naming the valid values otherwise.
PegPadding parse_peg_padding(const std::string& name);

// The PEG operation of CPVT on a token sequence:
//   out[prefix tokens] = tokens[prefix tokens]
//   out[grid tokens]   = grid + depthwise_conv_k(pad(grid)) + bias
// tokens: (B, N, C) with N = grid.total_tokens(); weight: (C, 1, k, k), k odd; bias: (C) or an
// undefined tensor. returns (B, N, C). Differentiable in tokens, weight and bias.
//
// peg_conv runs the fused kernel when it applies (fused_kernels_enabled(), CPU, float32) and the
// reference otherwise. The fused kernel reads the (B, N, C) layout in place (any batch and token
// strides, channels contiguous, else one copy), writes only its output, and computes every
// gradient in one pass over grad_output and tokens. It is not twice differentiable.
torch::Tensor peg_conv(const torch::Tensor& tokens, const torch::Tensor& weight,
                       const torch::Tensor& bias, const TokenGrid& grid, PegPadding padding);
torch::Tensor peg_conv_fused(const torch::Tensor& tokens, const torch::Tensor& weight,
                             const torch::Tensor& bias, const TokenGrid& grid, PegPadding padding);
// The composite of LibTorch ops (permute to (B, C, H, W), conv2d, residual, permute back): the
// definition the fused kernel is tested against, and the path for other devices and dtypes.
torch::Tensor peg_conv_reference(const torch::Tensor& tokens, const torch::Tensor& weight,
                                 const torch::Tensor& bias, const TokenGrid& grid,
                                 PegPadding padding);

// Whether peg_conv_fused accepts these tensors (CPU, float32).
bool peg_conv_fused_applies(const torch::Tensor& tokens, const torch::Tensor& weight);

}  // namespace posenc
