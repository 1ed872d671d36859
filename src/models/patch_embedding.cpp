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

std::pair<torch::Tensor, TokenGrid> PatchEmbeddingImpl::forward(const torch::Tensor& images) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == image_channels_, "images must have shape (B, ",
              image_channels_, ", H, W), got ", images.sizes());
  const int64_t height = images.size(2), width = images.size(3);
  torch::Tensor input = images;
  if (height % patch_size_ != 0 || width % patch_size_ != 0) {
    TORCH_CHECK(pad_, "image size ", height, "x", width, " is not divisible by the patch size ",
                patch_size_, "; resize to a multiple of ", patch_size_, " (e.g. ",
                (height + patch_size_ - 1) / patch_size_ * patch_size_, "x",
                (width + patch_size_ - 1) / patch_size_ * patch_size_,
                ") or enable zero-padding (--pad-to-patch, pad_to_patch)");
    const int64_t pad_bottom = (patch_size_ - height % patch_size_) % patch_size_;
    const int64_t pad_right = (patch_size_ - width % patch_size_) % patch_size_;
    input = torch::constant_pad_nd(images, {0, pad_right, 0, pad_bottom});
  }
  TORCH_CHECK(input.size(2) >= patch_size_ && input.size(3) >= patch_size_, "image size ", height,
              "x", width, " is smaller than one patch (", patch_size_, "x", patch_size_, ")");
  auto projected = proj_->forward(input);  // (B, dim, H/p, W/p)
  const TokenGrid grid{projected.size(2), projected.size(3), 0};
  // (B, dim, H/p, W/p) -> (B, H/p * W/p, dim)
  return {projected.flatten(2).transpose(1, 2), grid};
}

}  // namespace posenc
