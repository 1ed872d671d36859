#pragma once

#include <cstdint>
#include <utility>

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include "posenc/token_layout.h"

namespace posenc {

// Cuts an image into non-overlapping p x p patches and projects each to a token (a p x p
// convolution with stride p, as ViT). Any H x W that p divides; with `pad` set, other sizes are
// zero-padded at the bottom and right up to the next multiple of p.
class PatchEmbeddingImpl : public torch::nn::Module {
 public:
  PatchEmbeddingImpl(int64_t image_channels, int64_t dim, int64_t patch_size, bool pad);

  // images: (B, image_channels, H, W) -> tokens (B, H/p * W/p, dim) in row-major grid order,
  // and that grid (no prefix tokens).
  std::pair<torch::Tensor, TokenGrid> forward(const torch::Tensor& images);
  // Throws, saying what to do, when forward would refuse images of height x width.
  void check_image_size(int64_t height, int64_t width) const;
  void set_padding(bool pad) { pad_ = pad; }

 private:
  int64_t image_channels_;
  int64_t patch_size_;
  bool pad_;
  torch::nn::Conv2d proj_{nullptr};
};
TORCH_MODULE(PatchEmbedding);

}  // namespace posenc
