#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include <torch/types.h>

#include "posenc/data/batch_loader.h"
#include "posenc/data/image_dataset.h"
#include "posenc/distributed/communicator.h"
#include "posenc/models/vision_transformer.h"

namespace posenc {

// Asked before each batch of an evaluation: true stops it there, and the result says it is
// incomplete (a training run's test pass stopped by Ctrl-C). Empty: the evaluation runs to the end.
using StopRequest = std::function<bool()>;

struct AccuracyAtResolution {
  int64_t resolution_height = 0;
  int64_t resolution_width = 0;
  double accuracy = 0.0;  // fraction correct (0 for no images)
  double loss = 0.0;      // mean cross-entropy (0 for no images)
  int64_t correct = 0;
  int64_t images = 0;
  bool complete = true;  // false: stopped early by a StopRequest, the figures cover part of it
};

// Top-1 accuracy of `model` on `dataset` with every image resized to height x width.
AccuracyAtResolution evaluate(VisionTransformer& model, const ImageDataset& dataset,
                              const Normalization& normalization, int64_t height, int64_t width,
                              int64_t batch_size, const StopRequest& stop_requested = {});

// The same in a data-parallel run: each rank evaluates its part of `dataset` and the counts are
// summed over the ranks, so every rank returns the result for the whole data set. It is
// incomplete on every rank when a StopRequest stopped any rank's part.
AccuracyAtResolution evaluate_across_ranks(VisionTransformer& model, const ImageDataset& dataset,
                                           const Normalization& normalization, int64_t height,
                                           int64_t width, int64_t batch_size,
                                           Communicator& communicator,
                                           const StopRequest& stop_requested = {});

}  // namespace posenc
