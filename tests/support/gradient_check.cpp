#include "support/gradient_check.h"

#include <algorithm>
#include <cmath>

#include <torch/torch.h>

namespace posenc::testing {

std::string gradient_mismatches(const std::function<torch::Tensor()>& f,
                                const std::vector<torch::Tensor>& inputs,
                                const std::vector<std::string>& names, int64_t max_entries) {
  constexpr double kStep = 1e-6;
  constexpr double kAbsoluteTolerance = 1e-6;
  constexpr double kRelativeTolerance = 1e-5;

  const auto reference = f();
  torch::manual_seed(1234);
  const auto projection = torch::randn_like(reference);
  auto loss = [&] { return (f() * projection).sum(); };

  const auto analytic = torch::autograd::grad({loss()}, inputs, {}, false, false, true);
  std::string report;
  torch::NoGradGuard no_grad;
  for (size_t n = 0; n < inputs.size(); ++n) {
    TORCH_CHECK(inputs[n].scalar_type() == torch::kFloat64 && inputs[n].is_contiguous(),
                "gradient check needs contiguous double inputs");
    auto values = inputs[n].detach().view(-1);  // shares storage with the input
    const auto gradient =
        analytic[n].defined() ? analytic[n].reshape(-1) : torch::zeros_like(values);
    const int64_t count = values.numel();
    const int64_t stride = std::max<int64_t>(1, count / max_entries);
    for (int64_t i = 0; i < count; i += stride) {
      const double original = values[i].item<double>();
      values[i] = original + kStep;
      const double above = loss().item<double>();
      values[i] = original - kStep;
      const double below = loss().item<double>();
      values[i] = original;
      const double numeric = (above - below) / (2 * kStep);
      const double expected = gradient[i].item<double>();
      if (std::abs(numeric - expected) >
          kAbsoluteTolerance + kRelativeTolerance * std::abs(expected)) {
        report += names[n] + "[" + std::to_string(i) + "]: autograd " + std::to_string(expected) +
                  ", central difference " + std::to_string(numeric) + "\n";
      }
    }
  }
  return report;
}

}  // namespace posenc::testing
