#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace posenc {

// One-line training progress on stderr: epoch, step, loss, images/s (and for native-resolution
// batches tokens/s and the padding share), the epoch's ETA and the
// run's (the remaining epochs at this epoch's rate, with their test passes once one has been
// timed), redrawn in place on a terminal and printed every tenth of an epoch otherwise.
// Written by hand: Debian packages no C++ progress-bar library (indicators is not in Debian).
class ProgressBar {
 public:
  // `unit` names what a step trains on in the rate: "img" (images/s), "set" (token sets/s).
  ProgressBar(int64_t epochs, int64_t steps_per_epoch, std::string unit = "img");
  // Call after each step of `epoch` (0-based); `step` counts steps done in the epoch. With
  // native-resolution batches, `tokens` and `padded_tokens` (the step's tokens without and with
  // their padding) add the epoch's tokens/s and padding share to the line.
  void update(int64_t epoch, int64_t step, double loss, int64_t images, double tokens = 0.0,
              double padded_tokens = 0.0);
  // Ends the line of the epoch.
  void finish_epoch();
  // The duration of the last test pass, counted once per remaining epoch in the run's ETA.
  void set_test_seconds(double seconds) { test_seconds_ = seconds; }

 private:
  int64_t epochs_;
  int64_t steps_per_epoch_;
  std::string unit_;
  bool interactive_;
  std::chrono::steady_clock::time_point epoch_start_;
  std::chrono::steady_clock::time_point last_draw_;
  int64_t images_in_epoch_ = 0;
  double tokens_in_epoch_ = 0.0, padded_tokens_in_epoch_ = 0.0;
  int64_t first_step_ = -1;
  int64_t last_printed_tenth_ = 0;  // the first line comes after a tenth of the epoch
  double smoothed_loss_ = 0.0;
  double test_seconds_ = -1.0;  // not timed yet
};

// "ETA 12s, run 3m40s", or "ETA 12s, run 3m40s + test passes" before one has been timed:
// `seconds_per_step` at `step` of `epoch` (0-based) of `epochs`.
std::string format_eta(double seconds_per_step, int64_t epoch, int64_t epochs, int64_t step,
                       int64_t steps_per_epoch, double test_seconds);

std::string format_duration(double seconds);

}  // namespace posenc
