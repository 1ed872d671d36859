#pragma once
// The one training loop of posenc, and the interface a kind of training run (a task) implements
// to use it. A task brings its model, its batches, its loss and its evaluation; the loop owns the
// rest: epochs, the learning-rate schedule, AdamW, atomic checkpoints, metrics.jsonl and
// curves.png, the progress bar, Ctrl-C / SIGTERM / --time-budget, bitwise resume mid-epoch, and the
// ranks of a data-parallel run. Tasks: image classification (trainer.cpp) and the token-set tasks
// (set_training.cpp); a new task is one new file.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "posenc/distributed/communicator.h"
#include "posenc/train/checkpoint.h"
#include "posenc/train/evaluation.h"
#include "posenc/train/run_config.h"
#include "posenc/train/trainer.h"

namespace posenc {

// One step's forward on this rank's share of the batch.
struct StepLoss {
  torch::Tensor loss;     // this rank's mean loss, a scalar to call backward on
  double loss_sum = 0.0;  // the loss summed over what the task counts (images, target tokens)
  int64_t correct = 0;    // how many of those it predicted right
  int64_t counted = 0;    // how many it counts
  // native-resolution batches: this rank's tokens of its images, and with their padding (the
  // progress line shows tokens/s and the padding share); 0 for other batches
  double tokens = 0.0;
  double padded_tokens = 0.0;
};

struct TaskEvaluation {
  double loss = 0.0;
  double accuracy = 0.0;
  bool complete = true;  // false: stop_requested stopped it (on any rank); figures are partial
};

class TrainingTask {
 public:
  virtual ~TrainingTask() = default;

  virtual torch::nn::Module& model() = 0;
  // AdamW's groups: (weight-decayed, not decayed)
  virtual std::pair<std::vector<torch::Tensor>, std::vector<torch::Tensor>>
  weight_decay_groups() = 0;
  // The run's training options; the loop may change the batch per rank (another world size on
  // resume) before begin().
  virtual TrainingOptions& training() = 0;
  // The configuration stored in every checkpoint, called after begin().
  virtual nlohmann::json config_json() const = 0;

  // Prepares the batches with training() as it now is; returns the steps of an epoch.
  virtual int64_t begin(const Communicator& communicator) = 0;
  // Puts the batches at step `step` of `epoch`; steps before it are skipped exactly.
  virtual void start_epoch(int64_t epoch, int64_t step) = 0;
  // The forward of the next batch's share of this rank (a step of the current epoch remains).
  virtual StepLoss forward_next_batch() = 0;
  // Test loss and accuracy, every rank taking part (the loop sets training mode again after).
  // Asks stop_requested before each batch; once it says true, returns incomplete, every rank
  // agreeing on that.
  virtual TaskEvaluation evaluate(Communicator& communicator,
                                  const StopRequest& stop_requested) = 0;

  // What a step trains on, in the metrics key train_<samples>_per_second: "images", "sets".
  virtual std::string samples_name() const = 0;
  // The same in the progress bar's rate: "img", "set".
  virtual std::string samples_unit() const = 0;
  // Said after "training N parameters" when the run starts, e.g. " on 1000 nearest sets".
  virtual std::string describe_data() const { return ""; }
};

// How the loop starts: a new run, or a resumed one from the checkpoint's bytes (every rank holds
// them). Rank 0 alone writes into out_dir, which it has prepared.
struct LoopStart {
  bool resume = false;
  const CheckpointBytes* checkpoint = nullptr;  // set when resuming
  std::string out_dir;                          // rank 0's output folder
};

TrainingOutcome run_training_loop(TrainingTask& task, const LoopStart& start,
                                  Communicator& communicator);

}  // namespace posenc
