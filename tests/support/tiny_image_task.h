#pragma once

#include "posenc/data/data_source.h"
#include "posenc/models/vision_transformer.h"
#include "support/temporary_folder.h"

namespace posenc::testing {

// A tiny 3-class IDX data set in `folder` (train-images, train-labels, test-images,
// test-labels: 96 and 30 images of 8x8) whose class is the brightest quadrant.
DataSource tiny_image_data(const TemporaryFolder& folder);

// A ViT small enough to train on it in a second: nano with dim 16, one block, 8x8 images.
VisionTransformerOptions tiny_model();

}  // namespace posenc::testing
