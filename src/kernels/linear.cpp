#include "posenc/kernels/linear.h"

#include <torch/torch.h>


#include "kernels/blas_sgemm.h"
#include "posenc/kernels/kernel_settings.h"

namespace posenc {
namespace {

namespace F = torch::nn::functional;

using kernels::sgemm;

class LinearFunction : public torch::autograd::Function<LinearFunction> {
 public:
  // rows (P, K), weight (N, K), bias (N) or (0) for none -> (P, N)
  // (autograd functions take no undefined tensors, hence the empty bias)
  static torch::Tensor forward(torch::autograd::AutogradContext* context,
                               const torch::Tensor& rows, const torch::Tensor& weight,
                               const torch::Tensor& bias) {
    auto input = rows.contiguous();
    auto weights = weight.contiguous();
    const int64_t count = input.size(0), in = weights.size(1), out = weights.size(0);
    const bool with_bias = bias.numel() > 0;
    // the product starts from a copy of the bias (beta = 1) or from nothing (beta = 0)
    auto output = torch::empty({count, out}, input.options());
    if (with_bias)
      output.copy_(bias.reshape({1, out}).expand({count, out}));
    sgemm('N', 'T', count, out, in, input.data_ptr<float>(), weights.data_ptr<float>(),
          with_bias ? 1.0F : 0.0F, output.data_ptr<float>());
    context->save_for_backward({input, weights});
    context->saved_data["with_bias"] = with_bias;
    return output;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto saved = context->get_saved_variables();
    const auto& input = saved[0];    // (P, K)
    const auto& weights = saved[1];  // (N, K)
    const int64_t count = input.size(0), in = weights.size(1), out = weights.size(0);
    const auto grad = grad_outputs[0].to(torch::kFloat).contiguous();  // (P, N)
    torch::Tensor grad_input, grad_weight, grad_bias;
    if (context->needs_input_grad(0)) {
      grad_input = torch::empty({count, in}, input.options());  // (P, N) (N, K)
      sgemm('N', 'N', count, in, out, grad.data_ptr<float>(), weights.data_ptr<float>(), 0.0F,
            grad_input.data_ptr<float>());
    }
    if (context->needs_input_grad(1)) {
      grad_weight = torch::empty({out, in}, weights.options());  // (P, N)^T (P, K)
      sgemm('T', 'N', out, in, count, grad.data_ptr<float>(), input.data_ptr<float>(), 0.0F,
            grad_weight.data_ptr<float>());
    }
    if (context->saved_data["with_bias"].toBool() && context->needs_input_grad(2))
      grad_bias = grad.sum(0);
    return {grad_input, grad_weight, grad_bias};
  }
};

void check_arguments(const torch::Tensor& input, const torch::Tensor& weight,
                     const torch::Tensor& bias) {
  TORCH_CHECK(weight.dim() == 2, "linear: weight must be (N, K), got ", weight.sizes());
  TORCH_CHECK(input.dim() >= 1 && input.size(-1) == weight.size(1),
              "linear: input must be (..., K) with K = ", weight.size(1),
              " (the columns of weight), got ", input.sizes());
  TORCH_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0)),
              "linear: bias must be (N) with N = ", weight.size(0), ", got ", bias.sizes());
}

}  // namespace

bool linear_fused_applies(const torch::Tensor& input, const torch::Tensor& weight,
                          const torch::Tensor& bias) {
  auto cpu_float = [](const torch::Tensor& tensor) {
    return tensor.device().is_cpu() && tensor.scalar_type() == torch::kFloat;
  };
  return cpu_float(input) && cpu_float(weight) && (!bias.defined() || cpu_float(bias));
}

torch::Tensor linear(const torch::Tensor& input, const torch::Tensor& weight,
                     const torch::Tensor& bias) {
  if (fused_kernels_enabled() && linear_fused_applies(input, weight, bias))
    return linear_fused(input, weight, bias);
  return linear_reference(input, weight, bias);
}

torch::Tensor linear_fused(const torch::Tensor& input, const torch::Tensor& weight,
                           const torch::Tensor& bias) {
  check_arguments(input, weight, bias);
  TORCH_CHECK(linear_fused_applies(input, weight, bias),
              "linear_fused runs float32 CPU tensors; got input ", input.scalar_type(), " on ",
              input.device(), ", weight ", weight.scalar_type(), " on ", weight.device(),
              bias.defined() ? c10::str(", bias ", bias.scalar_type(), " on ", bias.device()) : "",
              "; use linear, which falls back to the reference path");
  const auto bias_or_empty = bias.defined() ? bias : torch::empty({0}, weight.options());
  if (input.dim() == 2)
    return LinearFunction::apply(input, weight, bias_or_empty);
  // (..., K) -> (P, K) -> (P, N) -> (..., N)
  auto sizes = input.sizes().vec();
  sizes.back() = weight.size(0);
  return LinearFunction::apply(input.reshape({-1, weight.size(1)}), weight, bias_or_empty)
      .reshape(sizes);
}

torch::Tensor linear_reference(const torch::Tensor& input, const torch::Tensor& weight,
                               const torch::Tensor& bias) {
  check_arguments(input, weight, bias);
  return F::linear(input, weight, bias);
}

}  // namespace posenc
