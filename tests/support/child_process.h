#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace posenc::testing {

// A program a test starts (argv, program first), with stdout and stderr going to `log_path`.
// Killed on destruction if still running, so a failing test leaves no process behind.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& arguments, const std::string& log_path);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // The wait status once it ended, or nothing if it still runs after `seconds`.
  std::optional<int> wait_for(double seconds);
  void send(int signal) const;

 private:
  pid_t pid_ = 0;
  std::optional<int> status_;
};

// The whole content of a text file ("" if it does not exist).
std::string read_text_file(const std::string& path);

}  // namespace posenc::testing
