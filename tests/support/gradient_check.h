#pragma once

#include <functional>
#include <string>
#include <vector>

#include <torch/types.h>

namespace posenc::testing {

// Compares the autograd gradient of a scalar projection of f() (sum(f() * R), R fixed random)
// with central differences, in double precision, at up to `max_entries` entries of every input.
// inputs: leaf tensors of dtype double that require grad; f must be deterministic.
// Returns an empty string when every entry agrees to |numeric - analytic| <= 1e-6 + 1e-5
// |analytic|, otherwise a description of the first mismatches.
std::string gradient_mismatches(const std::function<torch::Tensor()>& f,
                                const std::vector<torch::Tensor>& inputs,
                                const std::vector<std::string>& names, int64_t max_entries = 40);

}  // namespace posenc::testing
