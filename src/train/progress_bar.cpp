#include "train/progress_bar.h"

#include <unistd.h>

#include <cstdio>
#include <utility>

#include <c10/util/StringUtil.h>

namespace posenc {

std::string format_duration(double seconds) {
  const auto total = static_cast<int64_t>(seconds + 0.5);
  if (total >= 3600)
    return c10::str(total / 3600, "h", (total % 3600) / 60, "m");
  if (total >= 60)
    return c10::str(total / 60, "m", total % 60, "s");
  return c10::str(total, "s");
}

std::string format_eta(double seconds_per_step, int64_t epoch, int64_t epochs, int64_t step,
                       int64_t steps_per_epoch, double test_seconds) {
  const double this_epoch = seconds_per_step * static_cast<double>(steps_per_epoch - step);
  const auto epochs_after = static_cast<double>(epochs - epoch - 1);
  double run = this_epoch + epochs_after * seconds_per_step * static_cast<double>(steps_per_epoch);
  if (test_seconds >= 0.0)
    run += static_cast<double>(epochs - epoch) * test_seconds;
  return c10::str("ETA ", format_duration(this_epoch), ", run ", format_duration(run),
                  test_seconds >= 0.0 ? "" : " + test passes");
}

ProgressBar::ProgressBar(int64_t epochs, int64_t steps_per_epoch, std::string unit)
    : epochs_(epochs),
      steps_per_epoch_(steps_per_epoch),
      unit_(std::move(unit)),
      interactive_(isatty(STDERR_FILENO) != 0) {}

void ProgressBar::update(int64_t epoch, int64_t step, double loss, int64_t images,
                         double tokens, double padded_tokens) {
  const auto now = std::chrono::steady_clock::now();
  if (first_step_ < 0) {
    first_step_ = step - 1;
    epoch_start_ = now;
    images_in_epoch_ = 0;
    tokens_in_epoch_ = padded_tokens_in_epoch_ = 0.0;
    smoothed_loss_ = loss;
  }
  images_in_epoch_ += images;
  tokens_in_epoch_ += tokens;
  padded_tokens_in_epoch_ += padded_tokens;
  smoothed_loss_ = 0.9 * smoothed_loss_ + 0.1 * loss;
  const double elapsed = std::chrono::duration<double>(now - epoch_start_).count();
  const double rate = elapsed > 0 ? images_in_epoch_ / elapsed : 0.0;
  // " 5210 tok/s, 12% padding" for native-resolution batches
  std::string tokens_text;
  if (padded_tokens_in_epoch_ > 0.0) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, " %.0f tok/s, %.0f%% padding",
                  elapsed > 0 ? tokens_in_epoch_ / elapsed : 0.0,
                  100.0 * (1.0 - tokens_in_epoch_ / padded_tokens_in_epoch_));
    tokens_text = buffer;
  }
  const double seconds_per_step = elapsed / static_cast<double>(step - first_step_);
  const std::string eta =
      format_eta(seconds_per_step, epoch, epochs_, step, steps_per_epoch_, test_seconds_);
  const int64_t tenth = step * 10 / steps_per_epoch_;
  if (interactive_) {
    if (step != steps_per_epoch_ && now - last_draw_ < std::chrono::milliseconds(200))
      return;
    last_draw_ = now;
    constexpr int kWidth = 24;
    const auto filled = static_cast<int>(kWidth * step / steps_per_epoch_);
    std::fprintf(stderr, "\r\033[Kepoch %lld/%lld [%s%s] %lld/%lld loss %.4f %.0f %s/s%s %s",
                 static_cast<long long>(epoch + 1), static_cast<long long>(epochs_),
                 std::string(filled, '#').c_str(), std::string(kWidth - filled, '.').c_str(),
                 static_cast<long long>(step), static_cast<long long>(steps_per_epoch_),
                 smoothed_loss_, rate, unit_.c_str(), tokens_text.c_str(), eta.c_str());
  } else if (tenth != last_printed_tenth_) {
    last_printed_tenth_ = tenth;
    std::fprintf(stderr, "epoch %lld/%lld step %lld/%lld loss %.4f %.0f %s/s%s %s\n",
                 static_cast<long long>(epoch + 1), static_cast<long long>(epochs_),
                 static_cast<long long>(step), static_cast<long long>(steps_per_epoch_),
                 smoothed_loss_, rate, unit_.c_str(), tokens_text.c_str(), eta.c_str());
  }
  std::fflush(stderr);
}

void ProgressBar::finish_epoch() {
  if (interactive_)
    std::fprintf(stderr, "\n");
  first_step_ = -1;
  last_printed_tenth_ = 0;
}

}  // namespace posenc
