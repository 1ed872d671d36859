#pragma once

#include <torch/types.h>

namespace posenc {

// Step 2 of the LFF paper's Algorithm 1, the random-feature map of a Gaussian kernel:
//   r_x = 1/sqrt(F) [cos(x W_r^T) || sin(x W_r^T)],  F = 2 * W_r.size(0)
// so that r_x . r_y = (1/F) sum_k cos((x - y) . w_k).
// positions: (..., M), wr: (F/2, M) -> (..., F). Differentiable in positions and wr.
//
// fourier_features runs the fused kernel when it applies (fused_kernels_enabled(), CPU, float32):
// projection, sin/cos (SLEEF's 3.5-ulp sincos: absolute error below 1e-7, tested up to |x| = 1e6)
// and scaling in one pass; its backward reuses the forward's output instead of recomputing sin and
// cos. Not twice differentiable. Otherwise, and in fourier_features_reference, the composite of
// LibTorch ops.
torch::Tensor fourier_features(const torch::Tensor& positions, const torch::Tensor& wr);
torch::Tensor fourier_features_fused(const torch::Tensor& positions, const torch::Tensor& wr);
torch::Tensor fourier_features_reference(const torch::Tensor& positions, const torch::Tensor& wr);

// Whether fourier_features_fused accepts these tensors (CPU, float32).
bool fourier_features_fused_applies(const torch::Tensor& positions, const torch::Tensor& wr);

}  // namespace posenc
