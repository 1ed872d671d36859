#include "posenc/kernels/fourier_mlp.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <vector>

#include "kernels/fourier_problem.h"
#include "kernels/blas_sgemm.h"
#include "kernels/simd_dispatch.h"
#include "posenc/kernels/fourier_features.h"
#include "posenc/kernels/kernel_settings.h"
#include "posenc/kernels/linear.h"

namespace posenc {
namespace {

using kernels::sgemm;

// Rows per tile. A tile's rows of every step, about (F + 3 H + O) floats a row in the backward
// (0.5 MB at F = 128, H = 64, O = 192), stay in a core's L2 cache from one step to the next.
constexpr int64_t kTileRows = 256;
// The backward sums the weight gradients per chunk of tiles and adds the chunks in order; a fixed
// count keeps that order independent of the thread count.
constexpr int64_t kMaxChunks = 16;

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// Raw views of contiguous float32 parameters, which the caller keeps alive.
struct MlpWeights {
  kernels::FourierProblem fourier;                // M, F/2, 1/sqrt(F), W_r^T (M, F/2)
  int64_t features = 0, hidden = 0, outputs = 0;  // F, H, O
  const float* w1 = nullptr;                      // (H, F)
  const float* b1 = nullptr;                      // (H)
  const float* w2 = nullptr;                      // (O, H)
  const float* b2 = nullptr;                      // (O)
};

// Contiguous copies (or the tensors themselves) of the parameters that MlpWeights points into.
struct ContiguousParameters {
  torch::Tensor wr_transposed, w1, b1, w2, b2;

  ContiguousParameters(const torch::Tensor& wr, const torch::Tensor& w1_, const torch::Tensor& b1_,
                       const torch::Tensor& w2_, const torch::Tensor& b2_)
      : wr_transposed(wr.t().contiguous()),
        w1(w1_.contiguous()),
        b1(b1_.contiguous()),
        w2(w2_.contiguous()),
        b2(b2_.contiguous()) {}

  MlpWeights view() const {
    MlpWeights mlp;
    mlp.fourier = kernels::fourier_problem(wr_transposed);
    mlp.features = w1.size(1);
    mlp.hidden = w1.size(0);
    mlp.outputs = w2.size(0);
    mlp.w1 = w1.data_ptr<float>();
    mlp.b1 = b1.data_ptr<float>();
    mlp.w2 = w2.data_ptr<float>();
    mlp.b2 = b2.data_ptr<float>();
    return mlp;
  }
};

// One tile of `rows` positions (rows, M) through the encoder: features (rows, F), pre (rows, H),
// the hidden layer's input, hidden (rows, H) = GELU(pre), output (rows, O).
void forward_tile(const MlpWeights& mlp, const float* positions, float* features, float* pre,
                  float* hidden, float* output, int64_t rows) {
  const auto& simd = kernels::active_kernels();
  simd.fourier_forward(mlp.fourier, positions, features, 0, rows);
  // (rows, F) (H, F)^T
  sgemm('N', 'T', rows, mlp.hidden, mlp.features, features, mlp.w1, 0.0F, pre);
  simd.bias_gelu_forward(mlp.b1, pre, hidden, rows, mlp.hidden);
  for (int64_t row = 0; row < rows; ++row)
    std::copy(mlp.b2, mlp.b2 + mlp.outputs, output + row * mlp.outputs);
  // b2 + (rows, H) (O, H)^T
  sgemm('N', 'T', rows, mlp.outputs, mlp.hidden, hidden, mlp.w2, 1.0F, output);
}

struct ForwardResult {
  torch::Tensor output;  // (P, O)
  torch::Tensor pre;     // (P, H), kept for the backward, or undefined
};

// positions (P, M) contiguous -> output (P, O); keep: also pre, the hidden layer's input, of every
// row. The backward computes the features again: their sines and cosines take less time than
// writing them out and reading them back.
ForwardResult run_forward(const MlpWeights& mlp, const torch::Tensor& positions, bool keep) {
  const int64_t count = positions.size(0);
  const int64_t F = mlp.features, H = mlp.hidden;
  ForwardResult result;
  result.output = torch::empty({count, mlp.outputs}, positions.options());
  if (keep)
    result.pre = torch::empty({count, H}, positions.options());
  const float* position_data = positions.data_ptr<float>();
  float* output_data = result.output.data_ptr<float>();
  float* kept_pre = keep ? result.pre.data_ptr<float>() : nullptr;
  at::parallel_for(0, ceil_div(count, kTileRows), 1, [&](int64_t first, int64_t last) {
    // one tile's features, hidden and (when not kept) pre
    std::vector<float> scratch(kTileRows * (F + (keep ? H : 2 * H)));
    for (int64_t tile = first; tile < last; ++tile) {
      const int64_t begin = tile * kTileRows, rows = std::min(kTileRows, count - begin);
      float* features = scratch.data();
      float* hidden = features + kTileRows * F;
      float* pre = keep ? kept_pre + begin * H : hidden + kTileRows * H;
      forward_tile(mlp, position_data + begin * mlp.fourier.values, features, pre, hidden,
                   output_data + begin * mlp.outputs, rows);
    }
  });
  return result;
}

// Which inputs the backward must give a gradient for.
struct WantedGradients {
  bool positions = false, wr = false, w1 = false, b1 = false, w2 = false, b2 = false;
  bool grad_features() const { return positions || wr; }  // the Fourier backward's input
  bool grad_pre() const { return grad_features() || w1 || b1 || w2; }  // (and GELU(pre) for w2)
};

// One chunk's running sums of the parameter gradients, in one buffer of `size(mlp)` floats:
// dW2 (O, H), dW1 (H, F), db1 (H), db2 (O), dW_r^T (M, F/2).
struct GradientSums {
  float *w2, *w1, *b1, *b2, *wr_transposed;

  static int64_t size(const MlpWeights& mlp) {
    return mlp.outputs * mlp.hidden + mlp.hidden * mlp.features + mlp.hidden + mlp.outputs +
           mlp.fourier.values * mlp.fourier.frequencies;
  }
  GradientSums(const MlpWeights& mlp, float* buffer)
      : w2(buffer),
        w1(w2 + mlp.outputs * mlp.hidden),
        b1(w1 + mlp.hidden * mlp.features),
        b2(b1 + mlp.hidden),
        wr_transposed(b2 + mlp.outputs) {}
};

// One tile's backward: from grad_output (rows, O) and the forward's positions (rows, M) and pre
// (rows, H), adds to `sums` and writes grad_positions (rows, M; may be null).
// Scratch: grad_pre, hidden (rows, H), features and grad_features (rows, F).
void backward_tile(const MlpWeights& mlp, const WantedGradients& want, const float* positions,
                   const float* pre, const float* grad_output, float* grad_positions,
                   const GradientSums& sums, float* grad_pre, float* hidden, float* features,
                   float* grad_features, int64_t rows) {
  const auto& simd = kernels::active_kernels();
  const int64_t F = mlp.features, H = mlp.hidden, O = mlp.outputs;
  if (want.b2)
    simd.add_column_sums(grad_output, sums.b2, rows, O);
  if (!want.grad_pre())
    return;
  sgemm('N', 'N', rows, H, O, grad_output, mlp.w2, 0.0F, grad_pre);  // (rows, O) (O, H)
  simd.gelu_backward(pre, grad_pre, hidden, sums.b1, rows, H);
  if (want.w2)
    sgemm('T', 'N', O, H, rows, grad_output, hidden, 1.0F, sums.w2);  // (rows, O)^T (rows, H)
  if (want.w1 || want.grad_features())
    simd.fourier_forward(mlp.fourier, positions, features, 0, rows);
  if (want.w1)
    sgemm('T', 'N', H, F, rows, grad_pre, features, 1.0F, sums.w1);  // (rows, H)^T (rows, F)
  if (want.grad_features()) {
    sgemm('N', 'N', rows, F, H, grad_pre, mlp.w1, 0.0F, grad_features);  // (rows, H) (H, F)
    simd.fourier_backward(mlp.fourier, positions, features, grad_features,
                          want.wr ? sums.wr_transposed : nullptr, grad_positions, 0, rows);
  }
}

class FourierMlpFunction : public torch::autograd::Function<FourierMlpFunction> {
 public:
  // positions (P, M), wr (F/2, M), w1 (H, F), b1 (H), w2 (O, H), b2 (O) -> (P, O)
  static torch::Tensor forward(torch::autograd::AutogradContext* context,
                               const torch::Tensor& positions, const torch::Tensor& wr,
                               const torch::Tensor& w1, const torch::Tensor& b1,
                               const torch::Tensor& w2, const torch::Tensor& b2) {
    auto flat_positions = positions.contiguous();
    const ContiguousParameters parameters(wr, w1, b1, w2, b2);
    auto result = run_forward(parameters.view(), flat_positions, /*keep=*/true);
    context->save_for_backward({flat_positions, parameters.wr_transposed, parameters.w1,
                                parameters.b1, parameters.w2, parameters.b2, result.pre});
    return result.output;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto saved = context->get_saved_variables();
    const auto& positions = saved[0];  // (P, M)
    const auto& wr_transposed = saved[1];
    const auto& pre = saved[6];  // (P, H)
    // wr_transposed is contiguous, so its transpose's contiguous() is itself again
    const ContiguousParameters parameters(wr_transposed.t(), saved[2], saved[3], saved[4],
                                          saved[5]);
    const MlpWeights mlp = parameters.view();
    const auto grad_output = grad_outputs[0].to(torch::kFloat).contiguous();  // (P, O)
    WantedGradients want;
    want.positions = context->needs_input_grad(0);
    want.wr = context->needs_input_grad(1);
    want.w1 = context->needs_input_grad(2);
    want.b1 = context->needs_input_grad(3);
    want.w2 = context->needs_input_grad(4);
    want.b2 = context->needs_input_grad(5);

    const int64_t count = positions.size(0), values = mlp.fourier.values;
    const int64_t F = mlp.features, H = mlp.hidden, O = mlp.outputs;
    torch::Tensor grad_positions;
    if (want.positions)
      grad_positions = torch::empty_like(positions);
    const int64_t tiles = ceil_div(count, kTileRows);
    const int64_t chunks = std::max<int64_t>(1, std::min(tiles, kMaxChunks));
    const int64_t sums_size = GradientSums::size(mlp);
    auto chunk_sums = torch::zeros({chunks, sums_size}, pre.options());
    const float* position_data = positions.data_ptr<float>();
    const float* pre_data = pre.data_ptr<float>();
    const float* grad_output_data = grad_output.data_ptr<float>();
    float* grad_position_data = want.positions ? grad_positions.data_ptr<float>() : nullptr;
    float* chunk_sum_data = chunk_sums.data_ptr<float>();
    at::parallel_for(0, chunks, 1, [&](int64_t first, int64_t last) {
      std::vector<float> scratch(kTileRows * (2 * H + 2 * F));
      float* grad_pre = scratch.data();
      float* hidden = grad_pre + kTileRows * H;
      float* features = hidden + kTileRows * H;
      float* grad_features = features + kTileRows * F;
      for (int64_t chunk = first; chunk < last; ++chunk) {
        const GradientSums sums(mlp, chunk_sum_data + chunk * sums_size);
        for (int64_t tile = tiles * chunk / chunks; tile < tiles * (chunk + 1) / chunks; ++tile) {
          const int64_t begin = tile * kTileRows, rows = std::min(kTileRows, count - begin);
          backward_tile(mlp, want, position_data + begin * values, pre_data + begin * H,
                        grad_output_data + begin * O,
                        want.positions ? grad_position_data + begin * values : nullptr, sums,
                        grad_pre, hidden, features, grad_features, rows);
        }
      }
    });

    const auto totals = chunk_sums.sum(0);  // (sums_size)
    int64_t offset = 0;
    auto take = [&](std::vector<int64_t> shape) {
      const int64_t size = c10::multiply_integers(shape);
      auto part = totals.narrow(0, offset, size).reshape(shape);
      offset += size;
      return part;
    };
    auto grad_w2 = take({O, H}), grad_w1 = take({H, F}), grad_b1 = take({H}), grad_b2 = take({O});
    auto grad_wr = take({values, mlp.fourier.frequencies}).t().contiguous();
    auto wanted = [](bool want_it, const torch::Tensor& grad) {
      return want_it ? grad : torch::Tensor();
    };
    return {grad_positions,           wanted(want.wr, grad_wr), wanted(want.w1, grad_w1),
            wanted(want.b1, grad_b1), wanted(want.w2, grad_w2), wanted(want.b2, grad_b2)};
  }
};

void check_arguments(const torch::Tensor& positions, const torch::Tensor& wr,
                     const torch::Tensor& w1, const torch::Tensor& b1, const torch::Tensor& w2,
                     const torch::Tensor& b2) {
  TORCH_CHECK(wr.dim() == 2 && wr.size(0) >= 1,
              "fourier_mlp: wr must be (F/2, M) with F/2 >= 1, got ", wr.sizes());
  TORCH_CHECK(positions.dim() >= 1 && positions.size(-1) == wr.size(1),
              "fourier_mlp: positions must be (..., M) with M = ", wr.size(1),
              " (the columns of wr), got ", positions.sizes());
  TORCH_CHECK(w1.dim() == 2 && w1.size(1) == 2 * wr.size(0),
              "fourier_mlp: w1 must be (H, F) with F = 2 * wr.size(0) = ", 2 * wr.size(0), ", got ",
              w1.sizes());
  TORCH_CHECK(b1.dim() == 1 && b1.size(0) == w1.size(0),
              "fourier_mlp: b1 must be (H) with H = ", w1.size(0), " (the rows of w1), got ",
              b1.sizes());
  TORCH_CHECK(w2.dim() == 2 && w2.size(1) == w1.size(0),
              "fourier_mlp: w2 must be (O, H) with H = ", w1.size(0), " (the rows of w1), got ",
              w2.sizes());
  TORCH_CHECK(b2.dim() == 1 && b2.size(0) == w2.size(0),
              "fourier_mlp: b2 must be (O) with O = ", w2.size(0), " (the rows of w2), got ",
              b2.sizes());
}

}  // namespace

bool fourier_mlp_fused_applies(const torch::Tensor& positions, const torch::Tensor& wr,
                               const torch::Tensor& w1, const torch::Tensor& b1,
                               const torch::Tensor& w2, const torch::Tensor& b2) {
  for (const auto* tensor : {&positions, &wr, &w1, &b1, &w2, &b2})
    if (!tensor->device().is_cpu() || tensor->scalar_type() != torch::kFloat)
      return false;
  return true;
}

torch::Tensor fourier_mlp(const torch::Tensor& positions, const torch::Tensor& wr,
                          const torch::Tensor& w1, const torch::Tensor& b1, const torch::Tensor& w2,
                          const torch::Tensor& b2) {
  if (fused_kernels_enabled() && fourier_mlp_fused_applies(positions, wr, w1, b1, w2, b2))
    return fourier_mlp_fused(positions, wr, w1, b1, w2, b2);
  return fourier_mlp_reference(positions, wr, w1, b1, w2, b2);
}

torch::Tensor fourier_mlp_fused(const torch::Tensor& positions, const torch::Tensor& wr,
                                const torch::Tensor& w1, const torch::Tensor& b1,
                                const torch::Tensor& w2, const torch::Tensor& b2) {
  check_arguments(positions, wr, w1, b1, w2, b2);
  TORCH_CHECK(fourier_mlp_fused_applies(positions, wr, w1, b1, w2, b2),
              "fourier_mlp_fused runs float32 CPU tensors; got positions ", positions.scalar_type(),
              " on ", positions.device(), ", wr ", wr.scalar_type(), ", w1 ", w1.scalar_type(),
              ", b1 ", b1.scalar_type(), ", w2 ", w2.scalar_type(), ", b2 ", b2.scalar_type(),
              "; use fourier_mlp, which falls back to the reference");
  // (..., M) -> (P, M) -> (P, O) -> (..., O)
  auto leading = positions.sizes().vec();
  leading.back() = w2.size(0);
  auto flat = positions.reshape({-1, wr.size(1)});
  bool any_requires_grad = false;
  for (const auto* tensor : {&positions, &wr, &w1, &b1, &w2, &b2})
    any_requires_grad = any_requires_grad || tensor->requires_grad();
  if (torch::GradMode::is_enabled() && any_requires_grad)
    return FourierMlpFunction::apply(flat, wr, w1, b1, w2, b2).reshape(leading);
  // no graph: nothing to keep for a backward
  const ContiguousParameters parameters(wr, w1, b1, w2, b2);
  return run_forward(parameters.view(), flat.contiguous(), /*keep=*/false).output.reshape(leading);
}

torch::Tensor fourier_mlp_reference(const torch::Tensor& positions, const torch::Tensor& wr,
                                    const torch::Tensor& w1, const torch::Tensor& b1,
                                    const torch::Tensor& w2, const torch::Tensor& b2) {
  check_arguments(positions, wr, w1, b1, w2, b2);
  auto features = fourier_features_reference(positions, wr);      // (..., F)
  auto hidden = torch::gelu(linear_reference(features, w1, b1));  // (..., H)
  return linear_reference(hidden, w2, b2);                        // (..., O)
}

}  // namespace posenc
