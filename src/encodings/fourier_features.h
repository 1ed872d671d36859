#pragma once

#include <torch/types.h>

namespace posenc {

// Step 2 of the LFF paper's Algorithm 1, the random-feature map of a Gaussian kernel:
//   r_x = 1/sqrt(F) [cos(x W_r^T) || sin(x W_r^T)],  F = 2 * W_r.size(0)
// so that r_x . r_y = (1/F) sum_k cos((x - y) . w_k).
// positions: (..., M), wr: (F/2, M) -> (..., F)
torch::Tensor fourier_features(const torch::Tensor& positions, const torch::Tensor& wr);

}  // namespace posenc
