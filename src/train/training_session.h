#pragma once

#include <string>
#include <vector>

#include <torch/optim/adamw.h>
#include <torch/types.h>

#include "posenc/train/run_config.h"

namespace posenc {

// The parts of a training run that every trainer (images, token sets) shares.

// Creates the output folder and proves it writable before any time is spent training.
void prepare_output_folder(const std::string& out_dir);

// The checkpoint a run in `out_dir` writes after every epoch and when stopped.
std::string checkpoint_path(const std::string& out_dir);

// AdamW over two parameter groups, with weight decay on `decayed` only (DeiT/CPVT).
torch::optim::AdamW make_adamw(std::vector<torch::Tensor> decayed,
                               std::vector<torch::Tensor> not_decayed,
                               const TrainingOptions& training);
void set_learning_rate(torch::optim::AdamW& optimizer, double learning_rate);

// LibTorch's CPU generator (dropout, stochastic depth), saved in checkpoints so a resumed run
// draws what the uninterrupted one would have.
torch::Tensor cpu_rng_state();
void restore_cpu_rng_state(const torch::Tensor& state);

}  // namespace posenc
