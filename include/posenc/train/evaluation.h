#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "posenc/data/batch_loader.h"
#include "posenc/data/image_dataset.h"
#include "posenc/models/vision_transformer.h"

namespace posenc {

struct AccuracyAtResolution {
  int64_t resolution_height = 0;
  int64_t resolution_width = 0;
  double accuracy = 0.0;  // fraction correct
  double loss = 0.0;      // mean cross-entropy
  int64_t images = 0;
};

// Top-1 accuracy of `model` on `dataset` with every image resized to height x width.
AccuracyAtResolution evaluate(VisionTransformer& model, const ImageDataset& dataset,
                              const Normalization& normalization, int64_t height, int64_t width,
                              int64_t batch_size);

}  // namespace posenc
