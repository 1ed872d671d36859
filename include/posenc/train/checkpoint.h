#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <nlohmann/json.hpp>

namespace posenc {

// Where a run stands: enough, with the weights and optimiser state, to continue it exactly.
struct TrainingProgress {
  int64_t epoch = 0;           // the epoch in progress (0-based)
  int64_t batch_in_epoch = 0;  // batches of that epoch already trained
  int64_t global_step = 0;     // optimiser steps so far
  // running sums over the epoch in progress, for its train loss and accuracy
  double epoch_loss_sum = 0.0;
  int64_t epoch_correct = 0;
  int64_t epoch_images = 0;
  double elapsed_seconds = 0.0;   // training time of all sessions so far
  double epoch_started_at = 0.0;  // elapsed_seconds when the epoch in progress began
  // Ranks of the run that wrote it (data-parallel training): the batch size in its
  // configuration is per rank, so its global batch is batch_size x world_size.
  int64_t world_size = 1;
  // LibTorch's CPU generator (dropout, stochastic depth) of each rank, in rank order.
  std::vector<torch::Tensor> rng_states;
};

// A checkpoint file read into memory, so that it is read once and rank 0 can hand the very same
// bytes to the other ranks of a data-parallel run. Throws for a missing or unreadable file.
struct CheckpointBytes {
  std::string name;  // where the bytes came from, for messages
  std::string bytes;
  static CheckpointBytes read(const std::string& path);
};

// Writes model tensors, optimiser state, progress and the run configuration to `path`
// atomically: into a temporary file in the same folder, flushed to disk, then renamed over
// `path`. A crash or a full disk leaves the previous checkpoint intact. Throws saying why.
void save_checkpoint(const std::string& path, const nlohmann::json& config,
                     const torch::nn::Module& model, const torch::optim::Optimizer* optimizer,
                     const TrainingProgress& progress);

// The configuration stored in a checkpoint, to rebuild the model before loading its tensors.
// Throws for a missing file or one that is not a posenc checkpoint.
nlohmann::json read_checkpoint_config(const std::string& path);
nlohmann::json read_checkpoint_config(const CheckpointBytes& checkpoint);

// Loads the model tensors stored in `path` into `model`. Every mismatch (missing, unexpected or
// differently shaped tensors) is listed by name and shape in one error; nothing is loaded then.
void load_model_tensors(const std::string& path, torch::nn::Module& model);
void load_model_tensors(const CheckpointBytes& checkpoint, torch::nn::Module& model);

// Loads what resuming needs besides the model: the optimiser state (AdamW, as posenc trains; also
// from checkpoints written on LibTorch 1.13) and the progress.
TrainingProgress load_training_state(const std::string& path, torch::optim::AdamW& optimizer);
TrainingProgress load_training_state(const CheckpointBytes& checkpoint,
                                     torch::optim::AdamW& optimizer);
// The progress alone.
TrainingProgress read_training_progress(const CheckpointBytes& checkpoint);

}  // namespace posenc
