#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "posenc/data/augmentation.h"
#include "posenc/data/batch_loader.h"
#include "posenc/data/data_source.h"
#include "posenc/models/vision_transformer.h"

namespace posenc {

// The optimisation recipe. Defaults follow DeiT/CPVT (AdamW, weight decay 0.05, cosine schedule
// with linear warm-up, label smoothing 0.1) scaled to a 10-epoch CPU run; see docs/training.md
// for where and why they differ.
struct TrainingOptions {
  int64_t epochs = 10;
  int64_t batch_size = 128;
  double learning_rate = 1e-3;      // peak, after warm-up
  double min_learning_rate = 1e-5;  // end of the cosine
  double warmup_epochs = 1.0;
  double weight_decay = 0.05;
  double label_smoothing = 0.1;
  double gradient_clip = 1.0;  // max global L2 norm of the gradients; 0 disables clipping
  uint64_t seed = 0;
  // Multi-scale training: each batch is resized to one of these sizes (square), chosen per batch
  // from the seed. Empty: the data set's own size.
  std::vector<int64_t> train_resolutions;
  // Native-resolution training: {min, max} in pixels, each training image resized to its own
  // random height and width in [min, max] (multiples of the patch, drawn per image from the
  // seed, epoch and image), so that a batch holds images of different sizes and aspect ratios
  // (VisionTransformer::forward of a list). Empty: off. Not with train_resolutions.
  std::vector<int64_t> native_sizes;
  AugmentationOptions augmentation;
  int64_t eval_batch_size = 500;
  double time_budget_seconds = 0.0;  // stop gracefully (checkpoint) after this; 0: no limit

  void validate() const;
  nlohmann::json to_json() const;
  static TrainingOptions from_json(const nlohmann::json& json);

  // The default warm-up (1 epoch) is not shorter than a run of 1 epoch: for a run whose warm-up
  // was not chosen, shortens it to a tenth of the run when it does not fit. Returns whether it
  // did.
  bool fit_default_warmup_to_run();
};

// Everything a run needs, stored in its checkpoints so eval, predict and --resume rebuild it.
struct RunConfig {
  VisionTransformerOptions model;
  TrainingOptions training;
  DataSource data;
  Normalization normalization;  // measured on the training set when the run starts
  std::vector<std::string> class_names;

  nlohmann::json to_json() const;
  static RunConfig from_json(const nlohmann::json& json);
};

}  // namespace posenc
