#pragma once

#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

namespace posenc::cli {

// A --threads value: 1 to the cores this process may use. More threads than cores only make
// every parallel region wait for the ones the kernel has not scheduled (a 1000-thread `predict`
// took 56 s instead of 1 s), and 0 or -1 used to mean "all cores" without saying so.
int checked_thread_count(int64_t requested);

// --threads on `command`, bound to `threads` (left as it is when not given), checked as above.
void add_threads_option(CLI::App& command, int& threads, const std::string& help);

}  // namespace posenc::cli
