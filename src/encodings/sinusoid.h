#pragma once

#include <torch/types.h>

namespace posenc {

// Sinusoids of real-valued positions at geometrically spaced frequencies (Vaswani et al.):
// out[p] = [sin(x_p w_0), ..., sin(x_p w_{K-1}), cos(x_p w_0), ..., cos(x_p w_{K-1})],
// w_k = temperature^(-k / K), K = channels / 2. Channels are ordered [sin | cos] as in MAE and
// timm, a fixed permutation of Vaswani's interleaving. positions: (...) -> (..., channels).
// `channels` must be even.
torch::Tensor sinusoid(const torch::Tensor& positions, int64_t channels, double temperature);

}  // namespace posenc
