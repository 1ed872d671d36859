#pragma once

#include <cstdint>
#include <vector>

#include <torch/nn/module.h>

#include "posenc/distributed/communicator.h"

namespace posenc {

// Copies rank 0's parameters and buffers into every rank's replica of `module`.
void broadcast_from_leader(torch::nn::Module& module, Communicator& communicator);

// A 64-bit hash (FNV-1a) of the bytes of every parameter and buffer, in registration order.
uint64_t replica_fingerprint(const torch::nn::Module& module);

// Compares every rank's replica with rank 0's, bitwise. Ranks on identical machines stay
// identical, but CPUs with other instruction sets may round the optimiser step differently in
// the last bit: replicas that differ are overwritten with rank 0's. Returns the ranks that
// differed (the same list on every rank), so the caller can say so.
std::vector<int64_t> resynchronise_replicas(torch::nn::Module& module, Communicator& communicator);

}  // namespace posenc
