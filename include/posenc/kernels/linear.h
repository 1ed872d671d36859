#pragma once

#include <torch/types.h>


namespace posenc {

// A linear layer, output = input weight^T + bias, as torch::nn::functional::linear:
// input (..., K), weight (N, K), bias (N) or undefined -> (..., N).
//
// linear runs the fused path when it applies (fused_kernels_enabled(), CPU, float32): forward and
// backward call the sgemm of LibTorch's BLAS (MKL) on the tensors' memory directly, with no
// intermediate tensors, so that the LFF encoder can run the same products per cached tile. The
// bias is the initial value of the product (beta = 1): the output is filled with bias rows, then
// sgemm adds the product, so no pass adds the bias afterwards; the fill is still a write of the
// output (its cost: docs/kernels.md). The lff encoding's default variant runs its MLP in
// posenc::fourier_mlp (fourier_mlp.h) instead, per cached tile.
// Differentiable once (no double backward). Otherwise, and in linear_reference,
// torch::nn::functional::linear.
torch::Tensor linear(const torch::Tensor& input, const torch::Tensor& weight,
                     const torch::Tensor& bias);
torch::Tensor linear_fused(const torch::Tensor& input, const torch::Tensor& weight,
                           const torch::Tensor& bias);
torch::Tensor linear_reference(const torch::Tensor& input, const torch::Tensor& weight,
                               const torch::Tensor& bias);

// Whether linear_fused accepts these tensors (CPU, float32; the bias may be undefined).
bool linear_fused_applies(const torch::Tensor& input, const torch::Tensor& weight,
                          const torch::Tensor& bias);

}  // namespace posenc
