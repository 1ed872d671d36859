#include "support/test_encodings.h"

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

}  // namespace posenc::testing
