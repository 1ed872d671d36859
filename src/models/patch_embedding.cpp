#include "posenc/models/patch_embedding.h"

#include <c10/util/Exception.h>
#include <torch/torch.h>

namespace posenc {

PatchEmbeddingImpl::PatchEmbeddingImpl(int64_t image_channels, int64_t dim, int64_t patch_size,
                                       bool pad)
    : image_channels_(image_channels), patch_size_(patch_size), pad_(pad) {
  proj_ = register_module(
      "proj", torch::nn::Conv2d(
                  torch::nn::Conv2dOptions(image_channels, dim, patch_size).stride(patch_size)));
}

void PatchEmbeddingImpl::check_image_size(int64_t height, int64_t width) const {
  TORCH_CHECK(height >= 1 && width >= 1, "image size ", height, "x", width, " is empty");
  const int64_t padded_height = (height + patch_size_ - 1) / patch_size_ * patch_size_;
  const int64_t padded_width = (width + patch_size_ - 1) / patch_size_ * patch_size_;
  // every command that feeds images to a model (train, eval, predict, forward, attention,
  // probe) has --pad-to-patch
  TORCH_CHECK(pad_ || (padded_height == height && padded_width == width), "image size ", height,
              "x", width, " is not divisible by the patch size ", patch_size_,
              "; resize to a multiple of ", patch_size_, " (e.g. ", padded_height, "x",
              padded_width, ") or zero-pad to one (--pad-to-patch; pad_to_patch in C++)");
}

std::pair<torch::Tensor, TokenGrid> PatchEmbeddingImpl::forward(const torch::Tensor& images) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == image_channels_, "images must have shape (B, ",
              image_channels_, ", H, W), got ", images.sizes());
  const int64_t height = images.size(2), width = images.size(3);
  check_image_size(height, width);
  torch::Tensor input = images;
  if (height % patch_size_ != 0 || width % patch_size_ != 0) {
    const int64_t pad_bottom = (patch_size_ - height % patch_size_) % patch_size_;
    const int64_t pad_right = (patch_size_ - width % patch_size_) % patch_size_;
    input = torch::constant_pad_nd(images, {0, pad_right, 0, pad_bottom});
  }
  auto projected = proj_->forward(input);  // (B, dim, H/p, W/p)
  const TokenGrid grid{projected.size(2), projected.size(3), 0};
  // (B, dim, H/p, W/p) -> (B, H/p * W/p, dim)
  return {projected.flatten(2).transpose(1, 2), grid};
}

}  // namespace posenc
