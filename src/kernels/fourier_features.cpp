#include "posenc/kernels/fourier_features.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "kernels/fourier_problem.h"
#include "kernels/simd_dispatch.h"
#include "posenc/kernels/kernel_settings.h"

namespace posenc {

namespace {

// Enough positions per task that a task computes at least ~16k sines and cosines.
int64_t position_grain(int64_t frequencies) {
  return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, frequencies));
}

class FourierFeaturesFunction : public torch::autograd::Function<FourierFeaturesFunction> {
 public:
  // positions (P, M), wr (F/2, M) -> features (P, F)
  static torch::Tensor forward(torch::autograd::AutogradContext* context,
                               const torch::Tensor& positions, const torch::Tensor& wr) {
    auto flat_positions = positions.contiguous();
    auto wr_transposed = wr.t().contiguous();  // (M, F/2)
    const auto problem = kernels::fourier_problem(wr_transposed);
    const int64_t count = flat_positions.size(0);
    auto features = torch::empty({count, 2 * problem.frequencies}, positions.options());
    const float* position_data = flat_positions.data_ptr<float>();
    float* feature_data = features.data_ptr<float>();
    const auto& kernels = kernels::active_kernels();
    at::parallel_for(0, count, position_grain(problem.frequencies),
                     [&](int64_t begin, int64_t end) {
                       kernels.fourier_forward(problem, position_data, feature_data, begin, end);
                     });
    // The features are saved anyway by the Linear layer that follows, so saving them here costs
    // no memory; they hold scale * cos and scale * sin, all the backward needs.
    context->save_for_backward({flat_positions, wr_transposed, features});
    return features;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto saved = context->get_saved_variables();
    const auto& positions = saved[0];
    const auto& wr_transposed = saved[1];
    const auto& features = saved[2];
    const auto grad_features = grad_outputs[0].contiguous();
    const auto problem = kernels::fourier_problem(wr_transposed);
    const int64_t count = positions.size(0);
    const bool want_positions = context->needs_input_grad(0);
    const bool want_wr = context->needs_input_grad(1);

    torch::Tensor grad_positions;
    if (want_positions)
      grad_positions = torch::empty_like(positions);
    // Each chunk sums its own W_r^T gradient; a fixed chunk count keeps the summation order
    // independent of the thread count.
    const int64_t chunks = want_wr ? std::min<int64_t>(count, 64) : 0;
    const int64_t wr_size = problem.values * problem.frequencies;
    auto partial_sums = torch::zeros({std::max<int64_t>(chunks, 1), wr_size}, features.options());
    float* partial = partial_sums.data_ptr<float>();
    const float* position_data = positions.data_ptr<float>();
    const float* feature_data = features.data_ptr<float>();
    const float* grad_feature_data = grad_features.data_ptr<float>();
    float* grad_position_data = want_positions ? grad_positions.data_ptr<float>() : nullptr;
    const auto& kernels = kernels::active_kernels();
    if (want_wr) {
      at::parallel_for(0, chunks, 1, [&](int64_t first, int64_t last) {
        for (int64_t chunk = first; chunk < last; ++chunk)
          kernels.fourier_backward(problem, position_data, feature_data, grad_feature_data,
                                   partial + chunk * wr_size, grad_position_data,
                                   count * chunk / chunks, count * (chunk + 1) / chunks);
      });
    } else if (want_positions) {
      at::parallel_for(
          0, count, position_grain(problem.frequencies), [&](int64_t begin, int64_t end) {
            kernels.fourier_backward(problem, position_data, feature_data, grad_feature_data,
                                     nullptr, grad_position_data, begin, end);
          });
    }
    torch::Tensor grad_wr;
    if (want_wr)
      grad_wr = partial_sums.sum(0).reshape({problem.values, problem.frequencies}).t().contiguous();
    return {grad_positions, grad_wr};
  }
};

void check_arguments(const torch::Tensor& positions, const torch::Tensor& wr) {
  TORCH_CHECK(wr.dim() == 2 && wr.size(0) >= 1,
              "fourier_features: wr must be (F/2, M) with F/2 >= 1, got ", wr.sizes());
  TORCH_CHECK(positions.dim() >= 1 && positions.size(-1) == wr.size(1),
              "fourier_features: positions must be (..., M) with M = ", wr.size(1),
              " (the columns of wr), got ", positions.sizes());
}

}  // namespace

bool fourier_features_fused_applies(const torch::Tensor& positions, const torch::Tensor& wr) {
  return positions.device().is_cpu() && positions.scalar_type() == torch::kFloat &&
         wr.device().is_cpu() && wr.scalar_type() == torch::kFloat;
}

torch::Tensor fourier_features(const torch::Tensor& positions, const torch::Tensor& wr) {
  if (fused_kernels_enabled() && fourier_features_fused_applies(positions, wr))
    return fourier_features_fused(positions, wr);
  return fourier_features_reference(positions, wr);
}

torch::Tensor fourier_features_fused(const torch::Tensor& positions, const torch::Tensor& wr) {
  check_arguments(positions, wr);
  TORCH_CHECK(fourier_features_fused_applies(positions, wr),
              "fourier_features_fused runs float32 CPU tensors; got positions ",
              positions.scalar_type(), " on ", positions.device(), ", wr ", wr.scalar_type(),
              " on ", wr.device(), "; use fourier_features, which falls back to the reference");
  // (..., M) -> (P, M) -> (P, F) -> (..., F)
  auto leading = positions.sizes().vec();
  leading.back() = 2 * wr.size(0);
  auto flat = positions.reshape({-1, wr.size(1)});
  return FourierFeaturesFunction::apply(flat, wr).reshape(leading);
}

torch::Tensor fourier_features_reference(const torch::Tensor& positions, const torch::Tensor& wr) {
  check_arguments(positions, wr);
  auto projected = torch::matmul(positions, wr.t());  // (..., F/2)
  const double scale = 1.0 / std::sqrt(static_cast<double>(2 * wr.size(0)));
  return torch::cat({torch::cos(projected), torch::sin(projected)}, -1) * scale;
}

}  // namespace posenc
