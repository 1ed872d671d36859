#include "posenc/data/token_sets.h"

#include <cmath>
#include <cstdlib>
#include <sstream>

#include <c10/util/Exception.h>
#include <torch/torch.h>

namespace posenc {

int64_t TokenSets::targeted_tokens() const {
  return targets.ge(0).sum().item<int64_t>();
}

TokenSets TokenSets::select(const torch::Tensor& indices) const {
  return {content.index_select(0, indices), positions.index_select(0, indices),
          targets.index_select(0, indices), mask.index_select(0, indices), classes};
}

TokenSets TokenSets::with_position_shape(int64_t groups, int64_t values) const {
  TORCH_CHECK(groups >= 1 && values >= 1,
              "a position shape needs G >= 1 and M >= 1, got G = ", groups, ", M = ", values);
  TORCH_CHECK(groups * values == this->groups() * this->values(),
              "the data's positions are G = ", this->groups(), " groups of M = ", this->values(),
              " values (", this->groups() * this->values(),
              " per token), which cannot be read as G = ", groups, ", M = ", values, " (",
              groups * values,
              " per token); configure the model's position shape to match the data");
  TokenSets reshaped = *this;
  reshaped.positions = positions.reshape({size(), max_tokens(), groups, values});
  return reshaped;
}

void TokenSets::validate(const std::string& name) const {
  TORCH_CHECK(content.defined() && positions.defined() && targets.defined() && mask.defined(), name,
              ": incomplete token sets (content, positions, targets and mask are needed)");
  TORCH_CHECK(content.dim() == 3 && positions.dim() == 4 && targets.dim() == 2 && mask.dim() == 2,
              name,
              ": expected content (S, K, D), positions (S, K, G, M), targets and mask (S, K); "
              "got ",
              content.sizes(), ", ", positions.sizes(), ", ", targets.sizes(), ", ", mask.sizes());
  const auto sets = targets.size(0), tokens = targets.size(1);
  TORCH_CHECK(sets >= 1 && tokens >= 1, name, ": no token sets");
  TORCH_CHECK(content.size(0) == sets && positions.size(0) == sets && mask.size(0) == sets &&
                  content.size(1) == tokens && positions.size(1) == tokens &&
                  mask.size(1) == tokens,
              name, ": content ", content.sizes(), ", positions ", positions.sizes(), " and mask ",
              mask.sizes(), " must have the (S, K) = ", targets.sizes(), " of the targets");
  TORCH_CHECK(content.scalar_type() == torch::kFloat32 &&
                  positions.scalar_type() == torch::kFloat32 &&
                  targets.scalar_type() == torch::kLong && mask.scalar_type() == torch::kBool,
              name, ": expected float32 content and positions, int64 targets, bool mask");
  TORCH_CHECK(positions.isfinite().all().item<bool>(), name,
              ": positions hold NaN or infinite values");
  TORCH_CHECK(content.isfinite().all().item<bool>(), name,
              ": content holds NaN or infinite values");
  TORCH_CHECK(classes >= 2, name, ": need at least 2 classes, got ", classes);
  TORCH_CHECK(targets.ge(-1).logical_and(targets.lt(classes)).all().item<bool>(), name,
              ": targets must be classes in [0, ", classes, ") or -1 (no target)");
  TORCH_CHECK(targets.lt(0).logical_or(mask).all().item<bool>(), name,
              ": a padding token has a target");
  TORCH_CHECK(mask.any(1).all().item<bool>(), name, ": a set has no tokens");
  TORCH_CHECK(targets.ge(0).any().item<bool>(), name, ": no token has a target");
}

CoordinateRange CoordinateRange::parse(const std::string& text) {
  const auto colon = text.find(':');
  CoordinateRange range;
  bool valid = colon != std::string::npos;
  if (valid) {
    const std::string low = text.substr(0, colon), high = text.substr(colon + 1);
    char* end = nullptr;
    range.low = std::strtod(low.c_str(), &end);
    valid = !low.empty() && *end == '\0';
    range.high = std::strtod(high.c_str(), &end);
    valid = valid && !high.empty() && *end == '\0';
  }
  TORCH_CHECK(
      valid && std::isfinite(range.low) && std::isfinite(range.high) && range.low < range.high,
      "a coordinate range is low:high with low < high, such as 0:1 or 1:2; got '", text, "'");
  return range;
}

std::string CoordinateRange::describe() const {
  std::ostringstream text;
  text << low << ":" << high;
  return text.str();
}

}  // namespace posenc
