#pragma once

#include <string>

#include "posenc/models/vision_transformer.h"
#include "posenc/train/run_config.h"

namespace posenc {

// A model rebuilt from a checkpoint alone: its run configuration and its weights, in eval mode.
struct TrainedModel {
  RunConfig config;
  VisionTransformer model{nullptr};

  // The first `count` images of the run's test set (all of them if it has fewer), normalised as
  // in training and resized to height x width: (count, C, height, width) float32.
  torch::Tensor first_test_images(int64_t count, int64_t height, int64_t width) const;
};

// Throws for a missing or corrupt file, or tensors that do not fit the stored configuration
// (each listed by name and shape).
TrainedModel load_trained_model(const std::string& checkpoint);

}  // namespace posenc
