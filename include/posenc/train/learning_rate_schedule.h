#pragma once

#include <cstdint>

namespace posenc {

// Linear warm-up from 0 to `peak` over `warmup_steps`, then a cosine decay to `floor` at
// `total_steps` (DeiT's schedule, per step instead of per epoch).
class CosineSchedule {
 public:
  CosineSchedule(double peak, double floor, int64_t warmup_steps, int64_t total_steps);
  // The learning rate for optimiser step `step` (0-based).
  double at(int64_t step) const;

 private:
  double peak_;
  double floor_;
  int64_t warmup_steps_;
  int64_t total_steps_;
};

}  // namespace posenc
