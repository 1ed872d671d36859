#pragma once

#include <cstdint>

#include <torch/types.h>

namespace posenc {

// Resizes images (N, C, H, W) to (N, C, height, width) with antialiased bilinear interpolation:
// the one resampling used for loading image folders, multi-scale training, evaluation at other
// resolutions and prediction. uint8 images stay uint8 (rounded), float images stay float.
// Returns `images` itself when the size already matches.
torch::Tensor resize_images(const torch::Tensor& images, int64_t height, int64_t width);

}  // namespace posenc
