#pragma once

#include <optional>
#include <string>

#include "posenc/train/run_config.h"

namespace posenc {

struct TrainingOutcome {
  enum class Status { Completed, Interrupted, TimeBudgetReached } status = Status::Completed;
  int64_t epochs_done = 0;
  // test accuracy after the last epoch trained in this call; empty if none was (already done)
  std::optional<double> last_test_accuracy;
  std::string checkpoint;  // the last checkpoint written
};

// Trains a VisionTransformer as `config` says, writing into `out_dir`:
//   last.pt        checkpoint after every epoch and when stopped (Ctrl-C, --time-budget)
//   metrics.jsonl  one line per epoch: train loss and accuracy, test accuracy, lr, time
//   curves.png     the curves (if gnuplot is installed)
// Refuses a folder that already holds a checkpoint (see resume_training).
// Throws with a clear message for unusable data, an unwritable folder, a full disk, a checkpoint
// that does not fit, or a non-finite loss (the last good checkpoint is kept).
TrainingOutcome train(RunConfig config, const std::string& out_dir);

// What a resumed run may change: how long it runs. The time budget is per invocation and not
// inherited from the interrupted session.
struct ResumeOverrides {
  std::optional<int64_t> epochs;
  double time_budget_seconds = 0.0;  // 0: no limit
};

// Continues the run in `out_dir` exactly where its last checkpoint stopped (mid-epoch included),
// with the configuration stored there.
TrainingOutcome resume_training(const std::string& out_dir, const ResumeOverrides& overrides);

}  // namespace posenc
