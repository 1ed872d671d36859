#pragma once

#include <torch/types.h>

namespace posenc {

// The whole LFF encoder of one group (the paper's Algorithm 1, steps 2-3):
//   features = 1/sqrt(F) [cos(x W_r^T) || sin(x W_r^T)]       (fourier_features)
//   output   = GELU(features W_1^T + b_1) W_2^T + b_2          (GELU exact, as torch.nn.GELU)
// positions (..., M), wr (F/2, M), w1 (H, F), b1 (H), w2 (O, H), b2 (O) -> (..., O).
// Differentiable in all six (once; no double backward).
//
// fourier_mlp runs the fused kernel when it applies (fused_kernels_enabled(), CPU, float32): the
// positions are cut into tiles of a few hundred rows, and each tile goes through every step, the
// two matrix products (oneDNN's sgemm) and the element-wise work between them, while it is in the
// core's cache; the backward does the same, with each weight gradient summed per chunk of tiles in
// a fixed order. The forward keeps only the hidden layer's input (P, H) for the backward, and
// nothing when no gradient is wanted; the backward computes the features again, which took no
// longer than writing them out and reading them back (the composite keeps (P, F) and two (P, H)).
// Otherwise, and in fourier_mlp_reference, the composite of fourier_features_reference,
// linear_reference and torch::gelu.
torch::Tensor fourier_mlp(const torch::Tensor& positions, const torch::Tensor& wr,
                          const torch::Tensor& w1, const torch::Tensor& b1, const torch::Tensor& w2,
                          const torch::Tensor& b2);
torch::Tensor fourier_mlp_fused(const torch::Tensor& positions, const torch::Tensor& wr,
                                const torch::Tensor& w1, const torch::Tensor& b1,
                                const torch::Tensor& w2, const torch::Tensor& b2);
torch::Tensor fourier_mlp_reference(const torch::Tensor& positions, const torch::Tensor& wr,
                                    const torch::Tensor& w1, const torch::Tensor& b1,
                                    const torch::Tensor& w2, const torch::Tensor& b2);

// Whether fourier_mlp_fused accepts these tensors (all on the CPU, float32).
bool fourier_mlp_fused_applies(const torch::Tensor& positions, const torch::Tensor& wr,
                               const torch::Tensor& w1, const torch::Tensor& b1,
                               const torch::Tensor& w2, const torch::Tensor& b2);

}  // namespace posenc
