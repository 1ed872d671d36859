#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace posenc {

// One-line training progress on stderr: epoch, step, loss, images/s and ETA, redrawn in place
// on a terminal and printed every tenth of an epoch otherwise (logs, CI).
// Written by hand: Debian packages no C++ progress-bar library (indicators is not in Debian).
class ProgressBar {
 public:
  // `unit` names what a step trains on in the rate: "img" (images/s), "set" (token sets/s).
  ProgressBar(int64_t epochs, int64_t steps_per_epoch, std::string unit = "img");
  // Call after each step of `epoch` (0-based); `step` counts steps done in the epoch.
  void update(int64_t epoch, int64_t step, double loss, int64_t images);
  // Ends the line of the epoch.
  void finish_epoch();

 private:
  int64_t epochs_;
  int64_t steps_per_epoch_;
  std::string unit_;
  bool interactive_;
  std::chrono::steady_clock::time_point epoch_start_;
  std::chrono::steady_clock::time_point last_draw_;
  int64_t images_in_epoch_ = 0;
  int64_t first_step_ = -1;
  int64_t last_printed_tenth_ = 0;  // the first line comes after a tenth of the epoch
  double smoothed_loss_ = 0.0;
};

std::string format_duration(double seconds);

}  // namespace posenc
