#pragma once

namespace posenc {

// While alive, Ctrl-C (SIGINT) and SIGTERM set a flag instead of killing the process, so the
// training loop can stop after the current step and write a checkpoint. A second signal kills
// the process as usual.
class InterruptGuard {
 public:
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

  // The signal received (SIGINT or SIGTERM), or 0.
  static int received();
};

}  // namespace posenc
