#pragma once
// The raw view of W_r that the Fourier-feature kernel bodies read, built in one place for the fused
// Fourier features and the fused LFF encoder (fourier_mlp.cpp).
#include <torch/types.h>

#include "kernels/simd_kernels.h"

namespace posenc::kernels {

// wr_transposed: W_r^T (M, F/2), contiguous float32, kept alive by the caller -> M, F/2, the
// 1/sqrt(F) scale and the data pointer.
FourierProblem fourier_problem(const torch::Tensor& wr_transposed);

}  // namespace posenc::kernels
