#pragma once
// The kernel cases, defined once in the spirit of llama.cpp's test-backend-ops: a KernelProblem is
// one kernel at one shape (seeded inputs, which are trained, the fused and the reference
// operation, tolerances, work), from which tests/fused_kernels_test.cpp checks values and every
// gradient against the reference in double, and `posenc bench` and posenc_kernel_benchmarks time
// the forward and the forward + backward (KernelCase).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "posenc/kernels/peg_conv.h"
#include "posenc/kernels/rotary_rotation.h"

namespace posenc::bench {

struct PegShape {
  int64_t batch = 64, height = 14, width = 14, channels = 192, kernel = 3, prefix = 0;
  PegPadding padding = PegPadding::Zeros;
  bool bias = true;
};

struct LffShape {
  int64_t batch = 64, tokens = 196, groups = 1, values = 2, fourier = 128, hidden = 64, dim = 192;
};

struct FourierFeaturesShape {
  std::vector<int64_t> positions;  // (..., M)
  int64_t frequencies = 1;         // F / 2
};

struct FourierMlpShape {
  std::vector<int64_t> positions;                    // (..., M)
  int64_t frequencies = 1, hidden = 1, outputs = 1;  // F / 2, H, O
  double frequency_scale = 1.0;                      // W_r ~ N(0, scale^2)
  bool positions_trainable = true;                   // LFF trains on positions as data
};

struct LinearShape {
  std::vector<int64_t> input;  // (..., K)
  int64_t outputs = 1;         // N
  bool bias = true;
};

// Queries or keys (B, N, C = heads * head_dim) of which N - prefix are turned by rotary angles
// (T, N - prefix, heads, head_dim / 2): T = 1 on a grid, T = B at per-image positions.
struct RopeShape {
  int64_t batch = 64, tokens = 197, prefix = 1, heads = 6, head_dim = 64;
  RotaryPairs pairs = RotaryPairs::Half;
  bool per_image_angles = false;
  bool angles_trainable = false;  // rope_mixed and rope_lff learn them; rope_axial does not
  // the tokens as the q view of a fused (B, N, 3C) qkv product, as attention hands them over
  bool qkv_view = true;
};

// |fused - reference| <= atol + rtol |reference|
struct Tolerance {
  double rtol = 1e-5, atol = 1e-5;
};

struct KernelProblem {
  std::string kernel;  // "peg_conv", "fourier_features", "fourier_mlp", "linear"
  std::string shape;   // for messages: "B=2 5x7 C=19 k=3 prefix=1 zeros"
  std::vector<std::string> input_names;
  std::vector<torch::Tensor> inputs;  // float32, seeded; undefined for an optional one left out
  std::vector<bool> trainable;        // the inputs whose gradients the backward computes
  torch::Tensor grad_output;
  using Operation = std::function<torch::Tensor(const std::vector<torch::Tensor>&)>;
  Operation fused, reference;  // posenc's fused path, the composite LibTorch reference path
  // float32 fused against the reference in double
  Tolerance output_tolerance, gradient_tolerance;
  // The work: floating-point operations (a multiply-add counts 2) and bytes it must move at least
  // (read and written once each); 0 where not meaningful.
  int64_t forward_flops = 0, backward_flops = 0, forward_bytes = 0, backward_bytes = 0;

  // The output, then the gradient of each input (undefined where it is not trainable), of the
  // fused or the reference operation on the inputs in `dtype`, backward from grad_output.
  std::vector<torch::Tensor> output_and_gradients(bool fused_path, torch::ScalarType dtype) const;
  // "grad tokens"
  std::string gradient_name(size_t input) const { return "grad " + input_names.at(input); }
};

KernelProblem peg_problem(const PegShape& shape);
KernelProblem fourier_features_problem(const FourierFeaturesShape& shape);
KernelProblem fourier_mlp_problem(const FourierMlpShape& shape);
KernelProblem linear_problem(const LinearShape& shape);
KernelProblem rope_problem(const RopeShape& shape);

// The shapes every kernel is checked at: odd sizes, H != W, k = 1..9, prefix 0 and 1, every
// padding, partial SIMD vectors at 8 and 16 lanes, several row tiles, no rows at all.
std::vector<KernelProblem> kernel_test_problems();

// Parses "B,H,W,C,k,prefix", "B,N,G,M,F,H,D" and "B,N,prefix,heads,head_dim"; throws naming the
// expected form.
PegShape parse_peg_shape(const std::string& text);
LffShape parse_lff_shape(const std::string& text);
RopeShape parse_rope_shape(const std::string& text);

struct KernelCase {
  std::string name;
  nlohmann::json shape;
  // Bytes the work must move at least (read and written once each); 0 where not meaningful.
  int64_t bytes = 0;
  // One run of the operation: posenc's fused path, and the composite LibTorch reference path
  // (for the grid-PE cases: the PE recomputed on every call instead of cached).
  std::function<void()> fused;
  std::function<void()> reference;
  std::string note;
  // Floating-point operations the work must do (a multiply-add counts 2): the LFF MLP's matrix
  // products, PEG's depthwise convolution taps that read a token (not padding); 0 where not
  // meaningful.
  int64_t flops = 0;
};

// <name>_forward (without a graph) and <name>_forward_backward of `problem`, as timed cases.
std::vector<KernelCase> timed_cases(const KernelProblem& problem, const std::string& name,
                                    const nlohmann::json& shape, const std::string& note);

// peg_forward, peg_forward_backward: peg_problem at `shape`
std::vector<KernelCase> peg_cases(const PegShape& shape);
// lff_forward, lff_forward_backward: fourier_mlp_problem at LFF's per-token positions (B, N, G, M)
// with positions as data, as LFF trains; lff_grid_inference_b1 and _bB: the LFF encoding's cached
// embedding on a ViT's 14 x 14 grid in inference, batch 1 and shape.batch.
std::vector<KernelCase> lff_cases(const LffShape& shape);

// rope_forward, rope_forward_backward: rope_problem at `shape` with interleaved pairs (timm's
// vit_*_rope_* models), rope_half_*: with rotate-half pairs (EVA-02, DINOv3); fixed angles, one
// table for every image, the prefix tokens not turned, q a view of the qkv product.
std::vector<KernelCase> rope_cases(const RopeShape& shape);

// Median seconds of `repeats` runs of `run` after `warmup` runs.
double median_seconds(const std::function<void()>& run, int repeats, int warmup = 3);

// Copy bandwidth of this machine in GB/s (bytes read + bytes written per second) for buffers of
// `bytes`, with LibTorch's copy on the current thread count.
double copy_bandwidth_gbs(int64_t bytes, int repeats);

// Matrix-product throughput of this machine in GFLOP/s: posenc::linear_fused (oneDNN's sgemm) on
// a size x size by size x size float32 product, on the current thread count. A square product of
// this size is what the library does best: the reference rate for the LFF MLP's products (not a
// strict bound; the MLP's products alone ran at about this rate on the machine measured).
double matmul_gflops(int64_t size, int repeats);

}  // namespace posenc::bench
