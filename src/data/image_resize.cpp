#include "posenc/data/image_resize.h"

#include <torch/torch.h>

namespace posenc {

torch::Tensor resize_images(const torch::Tensor& images, int64_t height, int64_t width) {
  if (images.size(2) == height && images.size(3) == width)
    return images;
  namespace F = torch::nn::functional;
  const bool bytes = images.scalar_type() == torch::kUInt8;
  auto resized = F::interpolate(bytes ? images.to(torch::kFloat32) : images,
                                F::InterpolateFuncOptions()
                                    .size(std::vector<int64_t>{height, width})
                                    .mode(torch::kBilinear)
                                    .align_corners(false)
                                    .antialias(true));
  return bytes ? resized.round().clamp(0, 255).to(torch::kUInt8) : resized;
}

}  // namespace posenc
