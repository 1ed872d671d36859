#include "posenc/train/learning_rate_schedule.h"

#include <algorithm>
#include <cmath>

#include <c10/util/Exception.h>

namespace posenc {

CosineSchedule::CosineSchedule(double peak, double floor, int64_t warmup_steps, int64_t total_steps)
    : peak_(peak), floor_(floor), warmup_steps_(warmup_steps), total_steps_(total_steps) {
  TORCH_CHECK(total_steps >= 1 && warmup_steps >= 0 && warmup_steps < total_steps,
              "schedule needs 0 <= warm-up steps < total steps, got ", warmup_steps, " and ",
              total_steps);
}

double CosineSchedule::at(int64_t step) const {
  if (step < warmup_steps_)
    return peak_ * static_cast<double>(step + 1) / (warmup_steps_ + 1);
  const double progress = std::min(1.0, static_cast<double>(step - warmup_steps_) /
                                            std::max<int64_t>(1, total_steps_ - warmup_steps_));
  return floor_ + 0.5 * (peak_ - floor_) * (1.0 + std::cos(M_PI * progress));
}

}  // namespace posenc
