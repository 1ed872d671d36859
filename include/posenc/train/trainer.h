#pragma once

#include <optional>
#include <string>

#include "posenc/distributed/communicator.h"
#include "posenc/train/checkpoint.h"
#include "posenc/train/run_config.h"

namespace posenc {

struct TrainingOutcome {
  enum class Status { Completed, Interrupted, TimeBudgetReached } status = Status::Completed;
  int64_t epochs_done = 0;
  // test accuracy after the last epoch trained in this call; empty if none was (already done)
  std::optional<double> last_test_accuracy;
  std::string checkpoint;  // the last checkpoint written
  // Interrupted: the signal that stopped it (SIGINT or SIGTERM; SIGINT when another rank's did).
  int signal = 0;
};

// Trains a VisionTransformer as `config` says, writing into `out_dir`:
//   last.pt        checkpoint after every epoch and when stopped (Ctrl-C, --time-budget)
//   metrics.jsonl  one line per epoch: train loss and accuracy, test accuracy, lr, time
//   curves.png     the curves (if gnuplot is installed)
// Refuses a folder that already holds a checkpoint (see resume_training).
// Throws with a clear message for unusable data, an unwritable folder, a full disk, a checkpoint
// that does not fit, or a non-finite loss (the last good checkpoint is kept).
//
// Data-parallel training: rank 0 calls this with the communicator of the run, every other rank
// calls join_training(). Each rank trains on its shard of every global batch (batch_size per
// rank); gradients are averaged over the ranks after backward; the loss, accuracy and
// evaluation are summed over them. Rank 0 alone writes the files above.
TrainingOutcome train(RunConfig config, const std::string& out_dir, Communicator& communicator);
TrainingOutcome train(RunConfig config, const std::string& out_dir);

// What a resumed run may change: how long it runs. The time budget is per invocation and not
// inherited from the interrupted session.
struct ResumeOverrides {
  std::optional<int64_t> epochs;
  double time_budget_seconds = 0.0;  // 0: no limit

  // Sets them in the stored recipe of a run that has come as far as `progress`; a run cannot be
  // shortened below the epochs it has already begun.
  void apply(TrainingOptions& training, const TrainingProgress& progress) const;
};

// Continues the run in `out_dir` exactly where its last checkpoint stopped (mid-epoch included),
// with the configuration stored there.
// A checkpoint written by another number of ranks resumes with the same global batch, split over
// the ranks now running (it must divide); see docs/training.md.
TrainingOutcome resume_training(const std::string& out_dir, const ResumeOverrides& overrides,
                                Communicator& communicator);
TrainingOutcome resume_training(const std::string& out_dir, const ResumeOverrides& overrides);

// The part of ranks other than 0 in a data-parallel run: the configuration, and the checkpoint
// when resuming, come from rank 0. Writes no files.
TrainingOutcome join_training(Communicator& communicator);

}  // namespace posenc
