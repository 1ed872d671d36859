#include "support/test_encodings.h"

#include <cctype>

namespace posenc::testing {

torch::Tensor parameter(const PositionalEncoding& encoding, const std::string& name) {
  const auto parameters = encoding->named_parameters();
  const auto* found = parameters.find(name);
  if (found == nullptr) {
    ADD_FAILURE() << "encoding '" << encoding->type() << "' has no parameter '" << name << "'";
    return {};
  }
  return *found;
}

std::vector<std::pair<std::string, torch::Tensor>> trainable_parameters(
    const PositionalEncoding& encoding) {
  std::vector<std::pair<std::string, torch::Tensor>> trainable;
  for (const auto& item : encoding->named_parameters()) {
    if (item.value().requires_grad())
      trainable.emplace_back(item.key(), item.value());
  }
  return trainable;
}

torch::Tensor random_tokens(int64_t batch, const TokenGrid& grid, int64_t channels,
                            torch::ScalarType dtype) {
  return torch::randn({batch, grid.total_tokens(), channels}, torch::TensorOptions(dtype));
}

std::string spec_test_name(const std::string& spec) {
  std::string name = spec;
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)))
      c = '_';
  return name;
}

VisionTransformerOptions two_block_vit_options(std::vector<std::string> encodings) {
  auto options = VisionTransformerOptions::preset("nano");
  options.depth = 2;
  options.drop_path = 0.0;
  options.encodings = std::move(encodings);
  options.conditional_after_blocks = {};
  return options;
}

}  // namespace posenc::testing
