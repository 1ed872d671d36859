#include "local_ranks.h"

#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>

#include <c10/util/Exception.h>

#include "posenc/distributed/communicator.h"

extern char** environ;

namespace posenc::cli {
namespace {

using Clock = std::chrono::steady_clock;

// The children, for the signal handler (which may only use async-signal-safe calls).
constexpr int kMaxRanks = 1024;
pid_t g_children[kMaxRanks];
volatile sig_atomic_t g_child_count = 0;

void forward_signal(int signal) {
  for (int i = 0; i < g_child_count; ++i) {
    if (g_children[i] > 0)
      ::kill(g_children[i], signal);
  }
}

std::string describe_exit(int status) {
  if (WIFEXITED(status))
    return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return std::string("was killed by signal ") + ::strsignal(WTERMSIG(status));
  return "stopped";
}

constexpr const char* kLauncherVariable = "POSENC_LAUNCHER_PID";

pid_t spawn_rank(const std::vector<std::string>& arguments) {
  std::vector<char*> argv;
  for (const auto& argument : arguments)
    argv.push_back(const_cast<char*>(argument.c_str()));
  argv.push_back(nullptr);
  std::string launcher = std::string(kLauncherVariable) + "=" + std::to_string(::getpid());
  std::vector<char*> environment{launcher.data()};
  for (char** variable = environ; *variable != nullptr; ++variable) {
    if (std::strncmp(*variable, kLauncherVariable, std::strlen(kLauncherVariable)) != 0)
      environment.push_back(*variable);
  }
  environment.push_back(nullptr);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  // Its own process group: Ctrl-C in the terminal then reaches the ranks once, through
  // forward_signal, instead of twice (a second SIGINT would kill them before they save).
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attributes, 0);
  pid_t pid = 0;
  const int error =
      ::posix_spawn(&pid, "/proc/self/exe", nullptr, &attributes, argv.data(), environment.data());
  posix_spawnattr_destroy(&attributes);
  TORCH_CHECK(error == 0, "--nproc: cannot start a rank (", std::strerror(error), ")");
  return pid;
}

}  // namespace

void stop_when_launcher_dies() {
  const char* launcher = std::getenv(kLauncherVariable);
  if (launcher == nullptr)
    return;
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  // it may have died before prctl
  if (::getppid() != static_cast<pid_t>(std::atol(launcher)))
    ::raise(SIGTERM);
}

int run_local_ranks(int64_t ranks, const std::vector<std::string>& leader_arguments,
                    const std::vector<std::string>& follower_arguments, int64_t port,
                    double timeout_seconds) {
  TORCH_CHECK(ranks >= 1 && ranks <= kMaxRanks, "--nproc must be in [1, ", kMaxRanks, "], got ",
              ranks);
  const int64_t master_port = port > 0 ? port : unused_local_port();
  struct sigaction forward {};
  forward.sa_handler = forward_signal;
  sigemptyset(&forward.sa_mask);
  struct sigaction previous_interrupt {
  }, previous_terminate{};
  sigaction(SIGINT, &forward, &previous_interrupt);
  sigaction(SIGTERM, &forward, &previous_terminate);

  std::vector<pid_t> children;
  for (int64_t rank = 0; rank < ranks; ++rank) {
    auto rank_arguments = rank == 0 ? leader_arguments : follower_arguments;
    for (const std::string& extra :
         {std::string("--rank"), std::to_string(rank), std::string("--world-size"),
          std::to_string(ranks), std::string("--master-addr"), std::string("127.0.0.1"),
          std::string("--master-port"), std::to_string(master_port)})
      rank_arguments.push_back(extra);
    children.push_back(spawn_rank(rank_arguments));
    g_children[rank] = children.back();
    g_child_count = static_cast<sig_atomic_t>(rank + 1);
  }

  std::vector<std::optional<int>> statuses(children.size());
  std::optional<Clock::time_point> kill_at;
  size_t finished = 0;
  while (finished < children.size()) {
    for (size_t rank = 0; rank < children.size(); ++rank) {
      int status = 0;
      if (statuses[rank] || ::waitpid(children[rank], &status, WNOHANG) != children[rank])
        continue;
      statuses[rank] = status;
      g_children[rank] = 0;
      ++finished;
      const bool failed = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
      if (failed && !kill_at) {
        // the other ranks notice by themselves; this bounds the wait if one cannot
        kill_at = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(timeout_seconds + 30.0));
      }
    }
    if (kill_at && Clock::now() > *kill_at) {
      for (size_t rank = 0; rank < children.size(); ++rank) {
        if (!statuses[rank])
          ::kill(children[rank], SIGKILL);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  g_child_count = 0;
  sigaction(SIGINT, &previous_interrupt, nullptr);
  sigaction(SIGTERM, &previous_terminate, nullptr);

  // ranks stopped by Ctrl-C or SIGTERM (exit 130 or 143, after their checkpoint): the run was
  // interrupted, not failed, and the launcher exits as they did
  auto interrupted = [](int status) {
    return WIFEXITED(status) && (WEXITSTATUS(status) == 128 + SIGINT ||
                                 WEXITSTATUS(status) == 128 + SIGTERM);
  };
  if (std::all_of(statuses.begin(), statuses.end(),
                  [&](const std::optional<int>& status) { return interrupted(*status); }))
    return WEXITSTATUS(*statuses[0]);
  int failures = 0;
  for (size_t rank = 0; rank < children.size(); ++rank) {
    const int status = *statuses[rank];
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
      continue;
    ++failures;
    std::fprintf(stderr, "posenc: rank %zu of %lld %s\n", rank, static_cast<long long>(ranks),
                 describe_exit(status).c_str());
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace posenc::cli
