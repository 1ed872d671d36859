#include "train/interrupt.h"

#include <csignal>

namespace posenc {
namespace {

volatile std::sig_atomic_t g_received = 0;

void on_signal(int signal) {
  g_received = signal;
  // the next one terminates as usual
  std::signal(signal, SIG_DFL);
}

}  // namespace

InterruptGuard::InterruptGuard() {
  g_received = 0;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
}

InterruptGuard::~InterruptGuard() {
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

int InterruptGuard::received() {
  return g_received;
}

}  // namespace posenc
