#pragma once

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "posenc/encoding_registry.h"
#include "posenc/models/vision_transformer.h"

namespace posenc::testing {

// Runs `action` and expects it to throw an error whose message contains every fragment.
template <typename Action>
void expect_error_containing(Action&& action, const std::vector<std::string>& fragments) {
  try {
    action();
    ADD_FAILURE() << "expected an error mentioning '" << fragments.front() << "'";
  } catch (const c10::Error& error) {
    const std::string message = error.what_without_backtrace();
    for (const auto& fragment : fragments) {
      EXPECT_NE(message.find(fragment), std::string::npos)
          << "error message lacks '" << fragment << "': " << message;
    }
  }
}

// A named parameter of an encoding; fails the test if it does not exist.
torch::Tensor parameter(const PositionalEncoding& encoding, const std::string& name);

// Every parameter that requires grad, with its name.
std::vector<std::pair<std::string, torch::Tensor>> trainable_parameters(
    const PositionalEncoding& encoding);

// Random tokens (B, N, C) for a layout.
torch::Tensor random_tokens(int64_t batch, const TokenGrid& grid, int64_t channels,
                            torch::ScalarType dtype = torch::kFloat32);

// An encoding spec as a GoogleTest parameter name: every character but letters and digits
// becomes '_' ("rope_axial:pairs=half" -> "rope_axial_pairs_half").
std::string spec_test_name(const std::string& spec);

// A 2-block nano ViT (dim 64, 2 heads) without stochastic depth or PEG positions, with these
// encodings: the model the attention-encoding tests place their encodings in.
VisionTransformerOptions two_block_vit_options(std::vector<std::string> encodings);

}  // namespace posenc::testing
