#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace posenc::cli {

// `posenc train --nproc N`: runs N ranks of one data-parallel run on this machine, one process
// each (as torchrun --nproc-per-node does). Rank 0 runs this executable with
// `leader_arguments`, the others with `follower_arguments` (argv, program name first), each plus
// --rank r --world-size N --master-addr 127.0.0.1 --master-port `port` (0: a free port).
// Ctrl-C or SIGTERM reaches every rank once, so they stop together with a checkpoint. When a
// rank fails, the others stop by themselves within `timeout_seconds`; any still running after
// that and a grace period are killed. Returns 0 if every rank succeeded, 1 otherwise, after
// saying which ranks failed and how.
int run_local_ranks(int64_t ranks, const std::vector<std::string>& leader_arguments,
                    const std::vector<std::string>& follower_arguments, int64_t port,
                    double timeout_seconds);

// In a rank started by run_local_ranks: have the kernel send this process SIGTERM if the
// launcher dies (kill -9 included), so the ranks stop together with a checkpoint instead of
// running on unattended. Does nothing in a process started otherwise.
void stop_when_launcher_dies();

}  // namespace posenc::cli
