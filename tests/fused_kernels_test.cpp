// posenc's fused CPU kernels against the composite LibTorch reference (evaluated in double):
// values and every gradient of every case of the one kernel case list (bench/kernel_cases.cpp,
// which `posenc bench` times too), 1 and 2 threads, every SIMD level this CPU has (the scalar one
// always); and what a case list cannot say: non-contiguous inputs, subsets of the gradients,
// thread-count independence, allocations, dispatch and shape errors.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernel_cases.h"
#include "posenc/encoding_registry.h"
#include "posenc/kernels/fourier_features.h"
#include "posenc/kernels/fourier_mlp.h"
#include "posenc/kernels/kernel_settings.h"
#include "posenc/kernels/linear.h"
#include "posenc/kernels/peg_conv.h"
#include "posenc/kernels/rotary_rotation.h"
#include "support/child_process.h"
#include "support/counting_allocator.h"
#include "support/temporary_folder.h"
#include "support/test_encodings.h"

namespace posenc {
namespace {

using testing::expect_error_containing;

std::vector<SimdLevel> simd_levels_on_this_cpu() {
  std::vector<SimdLevel> levels;
  for (SimdLevel level : {SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512})
    if (level <= supported_simd_level())
      levels.push_back(level);
  return levels;
}

// Runs `check` once per (SIMD level, thread count), naming both in failures.
template <typename Check>
void for_each_simd_level_and_thread_count(Check&& check) {
  const int threads_before = at::get_num_threads();
  for (SimdLevel level : simd_levels_on_this_cpu()) {
    ScopedSimdLevel simd(level);
    for (int threads : {1, 2}) {
      at::set_num_threads(threads);
      SCOPED_TRACE(to_string(level) + ", " + std::to_string(threads) + " thread(s)");
      check();
    }
  }
  at::set_num_threads(threads_before);
}

// |fused - reference| <= atol + rtol |reference|, reporting the worst entry.
void expect_close(const torch::Tensor& fused, const torch::Tensor& reference,
                  const std::string& what, double rtol = 1e-5, double atol = 1e-5) {
  ASSERT_TRUE(fused.defined()) << what << " is undefined";
  ASSERT_EQ(fused.sizes(), reference.sizes()) << what;
  ASSERT_EQ(fused.scalar_type(), torch::kFloat) << what;
  auto error = (fused.to(torch::kDouble) - reference).abs();
  auto allowed = atol + rtol * reference.abs();
  auto excess = (error - allowed).max().item<double>();
  EXPECT_LE(excess, 0.0) << what << ": max abs error " << error.max().item<double>()
                         << " (reference max " << reference.abs().max().item<double>() << ")";
}

using bench::KernelProblem;

// The output and every gradient of `problem`'s fused path in float32 against `reference`, its
// reference path in double.
void expect_matches(const KernelProblem& problem, const std::vector<torch::Tensor>& reference) {
  const auto fused = problem.output_and_gradients(/*fused_path=*/true, torch::kFloat);
  for (size_t i = 0; i < reference.size(); ++i) {
    if (!reference[i].defined())
      continue;
    const std::string what = (i == 0 ? std::string("output") : problem.gradient_name(i - 1)) +
                             " of " + problem.kernel + " at " + problem.shape;
    if (reference[i].numel() == 0) {
      EXPECT_EQ(fused[i].sizes(), reference[i].sizes()) << what;
      continue;
    }
    const auto& tolerance = i == 0 ? problem.output_tolerance : problem.gradient_tolerance;
    expect_close(fused[i], reference[i], what, tolerance.rtol, tolerance.atol);
  }
}

void expect_matches_reference(const KernelProblem& problem) {
  expect_matches(problem, problem.output_and_gradients(/*fused_path=*/false, torch::kDouble));
}

// A PEG problem's tensors by name.
struct PegTensors {
  torch::Tensor tokens, weight, bias, grad_output;
};
PegTensors peg_tensors(const KernelProblem& problem) {
  return {problem.inputs[0], problem.inputs[1], problem.inputs[2], problem.grad_output};
}

// Every kernel at every shape of the one case list (bench/kernel_cases.cpp), at every SIMD level
// and on 1 and 2 threads.
TEST(FusedKernels, MatchTheReferenceInValuesAndEveryGradient) {
  const auto problems = bench::kernel_test_problems();
  for (const std::string kernel : {"peg_conv", "fourier_features", "fourier_mlp", "linear"}) {
    EXPECT_TRUE(std::any_of(problems.begin(), problems.end(),
                            [&](const KernelProblem& p) { return p.kernel == kernel; }))
        << kernel;
  }
  for (const auto& problem : problems) {
    const auto reference = problem.output_and_gradients(/*fused_path=*/false, torch::kDouble);
    for_each_simd_level_and_thread_count([&] { expect_matches(problem, reference); });
  }
}

// Non-temporal stores (ScopedStreamingThreshold(0) streams every output whose data and strides
// are 64-byte aligned: here the cases with C a multiple of 16) give the same results.
TEST(FusedPegKernel, StreamingStoresMatchTheReference) {
  std::vector<KernelProblem> cases;
  for (auto& problem : bench::kernel_test_problems()) {
    if (problem.kernel == "peg_conv")
      cases.push_back(std::move(problem));
  }
  cases.push_back(bench::peg_problem({2, 5, 9, 32, 5, 1, PegPadding::Circular, true}));
  cases.push_back(bench::peg_problem({1, 7, 3, 64, 7, 0, PegPadding::Replicate, true}));
  cases.push_back(bench::peg_problem({2, 6, 6, 16, 1, 1, PegPadding::Zeros, false}));
  const int64_t before = streamed_peg_rows();
  {
    ScopedStreamingThreshold stream_everything(0);
    for (const auto& problem : cases) {
      const int64_t rows_before = streamed_peg_rows();
      const auto reference = problem.output_and_gradients(false, torch::kDouble);
      for_each_simd_level_and_thread_count([&] { expect_matches(problem, reference); });
      // 64-byte rows of tokens (C a multiple of 16) stream, forward and input gradient
      const int64_t channels = problem.inputs[0].size(2), kernel = problem.inputs[1].size(2);
      if (channels % 16 == 0 && kernel % 2 == 1 && kernel <= 7)
        EXPECT_GT(streamed_peg_rows(), rows_before) << "no row streamed at " << problem.shape;
    }
  }
  EXPECT_GT(streamed_peg_rows(), before);
  // under the default threshold (4 MiB) these small outputs stay in the caches
  const int64_t cached = streamed_peg_rows();
  for (const auto& problem : cases)
    expect_matches_reference(problem);
  EXPECT_EQ(streamed_peg_rows(), cached);
}

TEST(KernelSettings, StreamingThresholdIsScoped) {
  const int64_t before = streaming_threshold_bytes();
  {
    ScopedStreamingThreshold threshold(123);
    EXPECT_EQ(streaming_threshold_bytes(), 123);
  }
  EXPECT_EQ(streaming_threshold_bytes(), before);
  expect_error_containing([] { ScopedStreamingThreshold negative(-1); }, {"non-negative"});
}

TEST(FusedPegKernel, ReadsNonContiguousTokensAndGradients) {
  const bench::PegShape c{2, 5, 6, 40, 3, 1, PegPadding::Zeros, true};
  auto t = peg_tensors(bench::peg_problem(c));
  const int64_t token_count = c.prefix + c.height * c.width;
  // tokens as a channel slice of a wider tensor: token stride 50, channels contiguous
  auto wide = torch::randn({c.batch, token_count, 50});
  wide.narrow(2, 5, c.channels).copy_(t.tokens);
  // gradient with channels not contiguous: a transposed (B, C, N) tensor
  auto transposed_grad = t.grad_output.transpose(1, 2).contiguous().transpose(1, 2);
  ASSERT_NE(transposed_grad.stride(2), 1);
  for_each_simd_level_and_thread_count([&] {
    auto strided_tokens = wide.narrow(2, 5, c.channels).detach().requires_grad_(true);
    auto weight = t.weight.clone().requires_grad_(true);
    auto bias = t.bias.clone().requires_grad_(true);
    auto output =
        peg_conv_fused(strided_tokens, weight, bias, {c.height, c.width, c.prefix}, c.padding);
    output.backward(transposed_grad);
    auto reference = bench::peg_problem(c).output_and_gradients(false, torch::kDouble);
    expect_close(output.detach(), reference[0], "output from strided tokens");
    expect_close(strided_tokens.grad(), reference[1], "grad tokens from a transposed gradient");
    expect_close(weight.grad(), reference[2], "grad weight", 1e-5, 1e-4);
    expect_close(bias.grad(), reference[3], "grad bias", 1e-5, 1e-4);
  });
  // a gradient broadcast along the batch (stride 0), as the backward of a sum produces
  auto tokens = t.tokens.clone().requires_grad_(true);
  peg_conv_fused(tokens, t.weight, t.bias, {c.height, c.width, c.prefix}, c.padding)
      .sum()
      .backward();
  auto reference_tokens = t.tokens.to(torch::kDouble).requires_grad_(true);
  peg_conv_reference(reference_tokens, t.weight.to(torch::kDouble), t.bias.to(torch::kDouble),
                     {c.height, c.width, c.prefix}, c.padding)
      .sum()
      .backward();
  expect_close(tokens.grad(), reference_tokens.grad(), "grad tokens of a sum");
}

TEST(FusedPegKernel, GradientsDoNotDependOnTheThreadCount) {
  // Fixed chunking: the weight gradient is summed in the same order on 1 and 2 threads.
  const bench::PegShape c{4, 14, 14, 64, 3, 1, PegPadding::Zeros, true};
  const auto t = peg_tensors(bench::peg_problem(c));
  const int threads_before = at::get_num_threads();
  at::set_num_threads(1);
  auto one = bench::peg_problem(c).output_and_gradients(true, torch::kFloat);
  at::set_num_threads(2);
  auto two = bench::peg_problem(c).output_and_gradients(true, torch::kFloat);
  at::set_num_threads(threads_before);
  for (size_t i = 0; i < one.size(); ++i)
    EXPECT_TRUE(torch::equal(one[i], two[i])) << "tensor " << i << " differs";
}

TEST(FusedPegKernel, ForwardAllocatesOnlyItsOutput) {
  const bench::PegShape c{8, 14, 14, 192, 3, 1, PegPadding::Zeros, true};
  const auto t = peg_tensors(bench::peg_problem(c));
  torch::NoGradGuard no_grad;
  peg_conv_fused(t.tokens, t.weight, t.bias, {c.height, c.width, c.prefix}, c.padding);  // warm
  testing::CountingCpuAllocator counting;
  auto output =
      peg_conv_fused(t.tokens, t.weight, t.bias, {c.height, c.width, c.prefix}, c.padding);
  const int64_t output_bytes = output.numel() * 4;
  const int64_t taps_bytes = c.kernel * c.kernel * c.channels * 4;
  EXPECT_GT(counting.peak_bytes(), 0) << "the counting allocator saw no allocation";
  EXPECT_LE(counting.peak_bytes(), output_bytes + taps_bytes + 4096)
      << "output is " << output_bytes << " bytes";
}

TEST(FusedPegKernel, IsWhatPegConvRunsForFloatOnTheCpu) {
  const bench::PegShape c{1, 3, 4, 8, 3, 1, PegPadding::Zeros, true};
  auto t = peg_tensors(bench::peg_problem(c));
  auto tokens = t.tokens.clone().requires_grad_(true);
  const TokenGrid grid{c.height, c.width, c.prefix};
  auto fused = peg_conv(tokens, t.weight, t.bias, grid, c.padding);
  EXPECT_NE(fused.grad_fn()->name().find("PegConvFunction"), std::string::npos)
      << fused.grad_fn()->name();
  {
    ScopedKernelPath reference_path(false);
    auto reference = peg_conv(tokens, t.weight, t.bias, grid, c.padding);
    EXPECT_EQ(reference.grad_fn()->name().find("PegConvFunction"), std::string::npos);
  }
  auto in_double = peg_conv(tokens.to(torch::kDouble), t.weight.to(torch::kDouble),
                            t.bias.to(torch::kDouble), grid, c.padding);
  EXPECT_EQ(in_double.grad_fn()->name().find("PegConvFunction"), std::string::npos)
      << "double must take the reference path";
}

TEST(FusedPegKernel, RejectsMismatchedShapes) {
  auto tokens = torch::randn({2, 13, 8});
  expect_error_containing(
      [&] {
        peg_conv_fused(tokens, torch::randn({8, 1, 3, 3}), {}, {3, 4, 0}, PegPadding::Zeros);
      },
      {"tokens must be (B, N, C) with N = 12", "[2, 13, 8]"});
  expect_error_containing(
      [&] {
        peg_conv_fused(tokens, torch::randn({8, 1, 2, 2}), {}, {3, 4, 1}, PegPadding::Zeros);
      },
      {"weight must be (C, 1, k, k)", "k odd"});
  expect_error_containing(
      [&] {
        peg_conv_fused(tokens, torch::randn({8, 1, 3, 3}), torch::randn({7}), {3, 4, 1},
                       PegPadding::Zeros);
      },
      {"bias must be (C) with C = 8"});
  expect_error_containing(
      [&] {
        peg_conv_fused(tokens.to(torch::kDouble), torch::randn({8, 1, 3, 3}).to(torch::kDouble), {},
                       {3, 4, 1}, PegPadding::Zeros);
      },
      {"float32", "use peg_conv"});
  expect_error_containing([] { parse_peg_padding("reflect"); }, {"reflect", "circular"});
}

// --- Fourier features -----------------------------------------------------------------------

// With M = 1 and W_r = 1 the argument of sin and cos is the float32 position itself, exactly, so
// this checks the vectorised sin and cos alone, up to |x| = 1e6 (range reduction included).
TEST(FusedFourierFeatures, SinesAndCosinesStayAccurateForLargeArguments) {
  torch::manual_seed(9);
  auto positions = torch::cat({torch::rand({3000, 1}) * 2e6 - 1e6, torch::randn({1000, 1}) * 10.0});
  auto wr = torch::ones({1, 1});
  const double scale = 1.0 / std::sqrt(2.0);
  auto argument = positions.to(torch::kDouble);
  auto expected = scale * torch::cat({argument.cos(), argument.sin()}, 1);
  for_each_simd_level_and_thread_count([&] {
    torch::NoGradGuard no_grad;
    expect_close(fourier_features_fused(positions, wr), expected, "features", 0.0, 2e-7);
  });
}

TEST(FusedFourierFeatures, GradientOfWrAloneWhenPositionsAreData) {
  auto positions = torch::rand({50, 2}) * 14.0;
  auto wr = torch::randn({64, 2}).requires_grad_(true);
  auto grad_output = torch::randn({50, 128});
  fourier_features_fused(positions, wr).backward(grad_output);
  auto reference_wr = wr.detach().to(torch::kDouble).requires_grad_(true);
  fourier_features_reference(positions.to(torch::kDouble), reference_wr)
      .backward(grad_output.to(torch::kDouble));
  expect_close(wr.grad(), reference_wr.grad(), "grad W_r", 1e-4, 1e-3);
}

// Whether the autograd graph that produced `tensor` has a node whose name contains `name`.
bool graph_contains(const torch::Tensor& tensor, const std::string& name) {
  std::vector<torch::autograd::Node*> pending{tensor.grad_fn().get()};
  while (!pending.empty()) {
    auto* node = pending.back();
    pending.pop_back();
    if (node == nullptr)
      continue;
    if (node->name().find(name) != std::string::npos)
      return true;
    for (const auto& edge : node->next_edges())
      pending.push_back(edge.function.get());
  }
  return false;
}

TEST(FusedFourierFeatures, IsWhatFourierFeaturesRunsForFloatOnTheCpu) {
  auto wr = torch::randn({4, 2}).requires_grad_(true);
  auto positions = torch::rand({3, 2});
  EXPECT_TRUE(graph_contains(fourier_features(positions, wr), "FourierFeaturesFunction"));
  EXPECT_FALSE(graph_contains(fourier_features(positions.to(torch::kDouble), wr.to(torch::kDouble)),
                              "FourierFeaturesFunction"))
      << "double must take the reference path";
  ScopedKernelPath reference_path(false);
  EXPECT_FALSE(graph_contains(fourier_features(positions, wr), "FourierFeaturesFunction"));
}

TEST(FusedFourierFeatures, RejectsMismatchedShapes) {
  expect_error_containing(
      [] {
        fourier_features_fused(torch::rand({5, 3}), torch::randn({8, 2}));
      },
      {"positions must be (..., M) with M = 2", "[5, 3]"});
  expect_error_containing(
      [] {
        fourier_features_fused(torch::rand({5, 2}), torch::randn({8}));
      },
      {"wr must be (F/2, M)"});
}

// --- Fused LFF encoder (Fourier features + GELU MLP) -------------------------------------------

// A Fourier-MLP problem at `shape` whose backward computes only the `wanted` gradients.
KernelProblem fourier_mlp_problem(const bench::FourierMlpShape& shape,
                                  const std::vector<bool>& wanted = std::vector<bool>(6, true)) {
  auto problem = bench::fourier_mlp_problem(shape);
  problem.trainable = wanted;
  return problem;
}

// The backward skips the steps no wanted gradient needs: frozen W_r with positions as data (the
// usual LFF training: no Fourier backward), only b_2 (no product at all), only W_2, only W_r. The
// gradients that are wanted still match.
TEST(FusedFourierMlp, MatchesReferenceWhenOnlySomeGradientsAreWanted) {
  const std::vector<std::vector<bool>> subsets = {{false, false, true, true, true, true},
                                                  {false, false, false, false, false, true},
                                                  {false, false, false, false, true, false},
                                                  {false, true, false, false, false, false}};
  for (const auto& wanted : subsets)
    expect_matches_reference(fourier_mlp_problem({{3, 70, 2}, 16, 24, 12}, wanted));
}

// With W_1 = 0, W_2 = I and b_2 = 0 the output is GELU(b_1): GELU and its slope against
// LibTorch's in double, far into both tails.
TEST(FusedFourierMlp, GeluAndItsSlopeMatchLibTorchOverAWideRange) {
  auto values = torch::linspace(-12.0, 12.0, 241);  // (H)
  const int64_t hidden = values.size(0);
  auto w1 = torch::zeros({hidden, 2});
  auto identity = torch::eye(hidden);
  auto reference_values = values.to(torch::kDouble).requires_grad_(true);
  auto reference = torch::gelu(reference_values);
  reference.sum().backward();
  for_each_simd_level_and_thread_count([&] {
    auto b1 = values.clone().requires_grad_(true);
    auto output = fourier_mlp_fused(torch::zeros({1, 1}), torch::ones({1, 1}), w1, b1, identity,
                                    torch::zeros({hidden}));
    output.sum().backward();
    expect_close(output.reshape({hidden}).detach(), reference.detach(), "GELU", 1e-5, 1e-6);
    expect_close(b1.grad(), reference_values.grad(), "GELU slope", 1e-5, 1e-6);
  });
}

TEST(FusedFourierMlp, ForwardWithoutGradientGivesTheSameOutput) {
  const auto in = fourier_mlp_problem({{700, 2}, 8, 16, 24}).inputs;
  auto w1 = in[2].clone().requires_grad_(true);
  auto with_graph = fourier_mlp_fused(in[0], in[1], w1, in[3], in[4], in[5]);
  ASSERT_TRUE(with_graph.requires_grad());
  torch::NoGradGuard no_grad;
  auto without = fourier_mlp_fused(in[0], in[1], w1, in[3], in[4], in[5]);
  EXPECT_TRUE(torch::equal(with_graph.detach(), without));
}

// Transposed positions and weights are read through contiguous copies.
TEST(FusedFourierMlp, ReadsNonContiguousInputs) {
  auto problem = fourier_mlp_problem({{40, 3}, 6, 10, 7});
  problem.fused = [](const std::vector<torch::Tensor>& in) {
    // the same values in column-major storage
    auto strided_x = in[0].t().contiguous().t(), strided_w1 = in[2].t().contiguous().t(),
         strided_w2 = in[4].t().contiguous().t();
    EXPECT_FALSE(strided_x.is_contiguous() || strided_w1.is_contiguous() ||
                 strided_w2.is_contiguous());
    return fourier_mlp_fused(strided_x, in[1], strided_w1, in[3], strided_w2, in[5]);
  };
  expect_matches_reference(problem);
}

TEST(FusedFourierMlp, IsWhatLffRunsForFloatOnTheCpu) {
  auto encoding = make_encoding("lff:F=16,H=8", {12, TokenGrid{3, 4, 0}});
  auto tokens = testing::random_tokens(2, TokenGrid{3, 4, 0}, 12);
  EXPECT_TRUE(graph_contains(encoding->forward(tokens, TokenGrid{3, 4, 0}), "FourierMlpFunction"));
  {
    ScopedKernelPath reference_path(false);
    EXPECT_FALSE(
        graph_contains(encoding->forward(tokens, TokenGrid{3, 4, 0}), "FourierMlpFunction"));
  }
  std::vector<torch::Tensor> in;
  for (const auto& input : fourier_mlp_problem({{4, 2}, 2, 3, 2}).inputs)
    in.push_back(input.to(torch::kDouble));
  auto in_double = fourier_mlp(in[0], in[1], in[2].requires_grad_(true), in[3], in[4], in[5]);
  EXPECT_FALSE(graph_contains(in_double, "FourierMlpFunction")) << "double takes the reference";
}

TEST(FusedFourierMlp, RejectsMismatchedShapes) {
  const auto in = fourier_mlp_problem({{5, 2}, 4, 6, 3}).inputs;  // F = 8, H = 6, O = 3
  struct {
    torch::Tensor positions, wr, w1, b1, w2, b2;
  } t{in[0], in[1], in[2], in[3], in[4], in[5]};
  expect_error_containing(
      [&] {
        fourier_mlp_fused(torch::rand({5, 3}), t.wr, t.w1, t.b1, t.w2, t.b2);
      },
      {"positions must be (..., M) with M = 2", "[5, 3]"});
  expect_error_containing(
      [&] {
        fourier_mlp_fused(t.positions, t.wr, torch::randn({6, 7}), t.b1, t.w2, t.b2);
      },
      {"w1 must be (H, F) with F = 2 * wr.size(0) = 8", "[6, 7]"});
  expect_error_containing(
      [&] { fourier_mlp_fused(t.positions, t.wr, t.w1, torch::randn({5}), t.w2, t.b2); },
      {"b1 must be (H) with H = 6"});
  expect_error_containing(
      [&] {
        fourier_mlp_fused(t.positions, t.wr, t.w1, t.b1, torch::randn({3, 4}), t.b2);
      },
      {"w2 must be (O, H) with H = 6", "[3, 4]"});
  expect_error_containing(
      [&] { fourier_mlp_fused(t.positions, t.wr, t.w1, t.b1, t.w2, torch::randn({4})); },
      {"b2 must be (O) with O = 3"});
  expect_error_containing(
      [&] { fourier_mlp_fused(t.positions.to(torch::kDouble), t.wr, t.w1, t.b1, t.w2, t.b2); },
      {"float32 CPU tensors", "use fourier_mlp"});
}

// --- Linear layer -----------------------------------------------------------------------------

// Transposed input and weight; only the weight is trainable, so the backward is asked for its
// gradient alone.
TEST(FusedLinear, ReadsTransposedTensorsWithOnlyTheWeightTrainable) {
  torch::manual_seed(8);
  auto input = torch::randn({24, 10}).t();                       // (10, 24), transposed
  auto weight = torch::randn({24, 6}).t().requires_grad_(true);  // (6, 24), transposed
  auto bias = torch::randn({6});                                 // no gradient wanted
  auto grad_output = torch::randn({10, 6});
  auto fused = linear_fused(input, weight, bias);
  fused.backward(grad_output);
  auto reference_weight = weight.detach().to(torch::kDouble).requires_grad_(true);
  auto reference =
      linear_reference(input.to(torch::kDouble), reference_weight, bias.to(torch::kDouble));
  reference.backward(grad_output.to(torch::kDouble));
  expect_close(fused.detach(), reference.detach(), "output");
  expect_close(weight.grad(), reference_weight.grad(), "grad weight", 1e-5, 1e-4);
}

// The bias is the product's starting value: it must be copied, never written, even when a
// single row makes the broadcast bias already contiguous.
TEST(FusedLinear, LeavesTheBiasUnchanged) {
  auto bias = torch::randn({4});
  const auto before = bias.clone();
  posenc::linear(torch::randn({1, 3}), torch::randn({4, 3}), bias);
  posenc::linear(torch::randn({3}), torch::randn({4, 3}), bias);
  EXPECT_TRUE(torch::equal(bias, before));
}

TEST(FusedLinear, IsWhatLinearRunsForFloatOnTheCpu) {
  auto input = torch::randn({4, 3}).requires_grad_(true);
  auto weight = torch::randn({2, 3});
  auto fused = posenc::linear(input, weight, torch::Tensor());
  EXPECT_NE(fused.grad_fn()->name().find("LinearFunction"), std::string::npos)
      << fused.grad_fn()->name();
  {
    ScopedKernelPath reference_path(false);
    auto reference = posenc::linear(input, weight, torch::Tensor());
    EXPECT_EQ(reference.grad_fn()->name().find("LinearFunction"), std::string::npos);
  }
  auto in_double =
      posenc::linear(input.to(torch::kDouble), weight.to(torch::kDouble), torch::Tensor());
  EXPECT_EQ(in_double.grad_fn()->name().find("LinearFunction"), std::string::npos)
      << "double must take the reference path";
}

TEST(FusedLinear, RejectsMismatchedShapes) {
  expect_error_containing(
      [] {
        linear_fused(torch::randn({4, 3}), torch::randn({2, 5}), {});
      },
      {"input must be (..., K) with K = 5", "[4, 3]"});
  expect_error_containing(
      [] {
        linear_fused(torch::randn({4, 3}), torch::randn({6}), {});
      },
      {"weight must be (N, K)"});
  expect_error_containing(
      [] {
        linear_fused(torch::randn({4, 3}), torch::randn({2, 3}), torch::randn({3}));
      },
      {"bias must be (N) with N = 2"});
  expect_error_containing(
      [] {
        linear_fused(torch::randn({4, 3}, torch::kDouble), torch::randn({2, 3}), {});
      },
      {"float32 CPU tensors", "use linear"});
  expect_error_containing(
      [] {
        linear_fused(torch::randn({4, 3}), torch::randn({2, 3}), torch::randn({2}, torch::kDouble));
      },
      {"bias Double", "use linear"});
}

// --- Settings ---------------------------------------------------------------------------------

// --- Rotary rotation ------------------------------------------------------------------------

TEST(FusedRotaryRotation, IsWhatRotatePairsRunsForFloatOnTheCpu) {
  auto tokens = torch::randn({2, 5, 8}).requires_grad_(true);
  auto angles = torch::randn({1, 4, 2, 2});
  auto fused = rotate_pairs(tokens, angles, 1, RotaryPairs::Half);
  EXPECT_NE(fused.grad_fn()->name().find("RotatePairsFunction"), std::string::npos)
      << fused.grad_fn()->name();
  {
    ScopedKernelPath reference_path(false);
    auto reference = rotate_pairs(tokens, angles, 1, RotaryPairs::Half);
    EXPECT_EQ(reference.grad_fn()->name().find("RotatePairsFunction"), std::string::npos);
  }
  auto in_double =
      rotate_pairs(tokens.to(torch::kDouble), angles.to(torch::kDouble), 1, RotaryPairs::Half);
  EXPECT_EQ(in_double.grad_fn()->name().find("RotatePairsFunction"), std::string::npos)
      << "double must take the reference path";
}

// A table row sums its angle gradient over the images in one task, in image order: the same
// bits on any thread count.
TEST(FusedRotaryRotation, AngleGradientsDoNotDependOnTheThreadCount) {
  bench::RopeShape shape;
  shape.batch = 8;
  shape.tokens = 50;
  shape.angles_trainable = true;
  const auto problem = bench::rope_problem(shape);
  const int threads_before = at::get_num_threads();
  at::set_num_threads(1);
  const auto one = problem.output_and_gradients(/*fused_path=*/true, torch::kFloat);
  at::set_num_threads(2);
  const auto two = problem.output_and_gradients(/*fused_path=*/true, torch::kFloat);
  at::set_num_threads(threads_before);
  EXPECT_TRUE(torch::equal(one[2], two[2]));
  EXPECT_TRUE(torch::equal(one[1], two[1]));
}

// One call turns a block's queries and keys (one table, one node): the same values and gradients
// as the reference on each, also when only one of the two reaches the loss.
TEST(FusedRotaryRotation, QueriesAndKeysTogetherMatchTheReferenceOnEach) {
  torch::manual_seed(17);
  const int64_t channels = 2 * 12;
  const auto qkv = torch::randn({3, 1 + 10, 3 * channels});
  const auto angles = torch::rand({1, 10, 2, 6}) * 8.0 - 4.0;
  const auto grad_q = torch::randn({3, 11, channels}), grad_k = torch::randn({3, 11, channels});
  for (RotaryPairs pairs : {RotaryPairs::Interleaved, RotaryPairs::Half}) {
    for (bool keys_in_loss : {true, false}) {
      SCOPED_TRACE(to_string(pairs) + (keys_in_loss ? "" : ", keys not in the loss"));
      auto run = [&](bool fused, torch::ScalarType dtype) {
        auto x = qkv.to(dtype).clone().requires_grad_(true);
        auto theta = angles.to(dtype).clone().requires_grad_(true);
        const auto q = x.narrow(2, 0, channels), k = x.narrow(2, channels, channels);
        torch::Tensor q_out, k_out;
        if (fused) {
          std::tie(q_out, k_out) = rotate_queries_and_keys(q, k, theta, 1, pairs);
        } else {
          q_out = rotate_pairs_reference(q, theta, 1, pairs);
          k_out = rotate_pairs_reference(k, theta, 1, pairs);
        }
        auto loss = (q_out * grad_q.to(dtype)).sum();
        if (keys_in_loss)
          loss = loss + (k_out * grad_k.to(dtype)).sum();
        loss.backward();
        return std::vector<torch::Tensor>{q_out.detach(), k_out.detach(), x.grad(),
                                          theta.grad()};
      };
      const auto fused = run(true, torch::kFloat), reference = run(false, torch::kDouble);
      expect_close(fused[0], reference[0], "queries");
      expect_close(fused[1], reference[1], "keys");
      expect_close(fused[2], reference[2], "grad qkv", 1e-4, 1e-4);
      expect_close(fused[3], reference[3], "grad angles", 1e-4, 1e-4);
    }
  }
}

TEST(FusedRotaryRotation, RejectsMismatchedShapes) {
  auto tokens = torch::randn({2, 5, 8});
  expect_error_containing(
      [&] { rotate_pairs_fused(tokens, torch::randn({1, 3, 2, 2}), 1, RotaryPairs::Half); },
      {"angles hold 3 positions", "4 positioned tokens"});
  expect_error_containing(
      [&] { rotate_pairs_fused(tokens, torch::randn({1, 4, 2, 3}), 1, RotaryPairs::Half); },
      {"turn 12 channels", "C = 8"});
  expect_error_containing(
      [&] { rotate_pairs_fused(tokens, torch::randn({3, 4, 2, 2}), 1, RotaryPairs::Half); },
      {"1 image (shared by all) or B = 2"});
  expect_error_containing(
      [&] { rotate_pairs_fused(tokens, torch::randn({1, 4, 2, 2}), 6, RotaryPairs::Half); },
      {"prefix must be in [0, N = 5]"});
  expect_error_containing(
      [&] { rotate_pairs_fused(tokens[0], torch::randn({1, 4, 2, 2}), 1, RotaryPairs::Half); },
      {"tokens must be (B, N, C)"});
  expect_error_containing(
      [&] {
        rotate_pairs_fused(tokens.to(torch::kDouble), torch::randn({1, 4, 2, 2}), 1,
                           RotaryPairs::Half);
      },
      {"float32", "use rotate_pairs"});
  expect_error_containing([] { parse_rotary_pairs("complex"); }, {"complex", "interleaved"});
}

TEST(KernelSettings, SimdLevelsParseAndScopesRestore) {
  EXPECT_EQ(parse_simd_level("avx2"), SimdLevel::Avx2);
  expect_error_containing([] { parse_simd_level("sse9"); }, {"sse9", "scalar, avx2 or avx512"});
  const SimdLevel before = active_simd_level();
  {
    ScopedSimdLevel scalar(SimdLevel::Scalar);
    EXPECT_EQ(active_simd_level(), SimdLevel::Scalar);
  }
  EXPECT_EQ(active_simd_level(), before);
  if (supported_simd_level() < SimdLevel::Avx512)
    expect_error_containing([] { ScopedSimdLevel too_wide(SimdLevel::Avx512); },
                            {"this CPU supports up to"});
}

TEST(KernelSettings, EncodingsGiveTheSameResultOnBothPaths) {
  const TokenGrid grid{6, 5, 1};
  for (const std::string spec :
       {"peg:k=5", "peg:padding=replicate", "lff:F=32,H=16", "lff:G=2,M=3,F=20", "rope_axial",
        "rope_mixed:pairs=half", "rope_lff:G=2,M=3"}) {
    torch::manual_seed(9);
    // rotary encodings turn each of the 2 heads' 8 channels
    auto encoding = make_encoding(spec, {16, grid, 2});
    auto tokens = testing::random_tokens(2, grid, 16);
    auto layout = encoding->accepts_positions() && spec.find("G=2,M=3") != std::string::npos
                      ? TokenLayout::at_positions(torch::rand({2, 30, 2, 3}) * 5.0, 1)
                      : TokenLayout(grid);
    auto fused = encoding->forward(tokens, layout);
    ScopedKernelPath reference_path(false);
    auto reference = encoding->forward(tokens, layout);
    EXPECT_TRUE(torch::allclose(fused, reference, 1e-5, 1e-5)) << spec;
  }
}

#ifdef POSENC_CLI_PATH
// `posenc bench --json` on tiny shapes: every case timed, PEG with its bytes against the copy
// bandwidth, PEG and the LFF per-token cases with their FLOPs (the convolution's taps inside the
// grid, the MLP's products) against the measured matrix-product rate, and figures that agree with
// one another.
TEST(BenchCommand, ReportsBandwidthForPegAndMultiplyAddRateForPegAndLff) {
  testing::TemporaryFolder folder;
  const std::string log = folder.path("bench.log");
  // LFF: B=2, N=5, G=2, M=3, F=8, H=4, D=6 -> 20 rows of (8 -> 4) and (4 -> 3)
  testing::ChildProcess process({POSENC_CLI_PATH, "bench", "--json", "--threads", "1", "--repeats",
                                 "1", "--peg-shape", "2,3,4,8,3,1", "--lff-shape", "2,5,2,3,8,4,6",
                                 "--rope-shape", "2,5,1,2,4"},
                                log);
  const auto status = process.wait_for(300);
  ASSERT_TRUE(status.has_value()) << "posenc bench still running";
  const std::string text = testing::read_text_file(log);
  ASSERT_EQ(*status, 0) << text;
  const auto begin = text.find('{'), end = text.rfind('}');
  ASSERT_NE(begin, std::string::npos) << text;
  const auto report = nlohmann::json::parse(text.substr(begin, end - begin + 1));
  const double matmul_gflops = report.at("matmul_gflops");
  EXPECT_TRUE(std::isfinite(matmul_gflops) && matmul_gflops > 0.0) << matmul_gflops;
  const int64_t lff_forward_flops = 2 * 20 * (8 * 4 + 4 * 3);
  // PEG: B=2, C=8, 3x4 grid, k=3 -> taps inside the grid: rows 3*3 - 2 = 7, columns 3*4 - 2 = 10
  const int64_t peg_forward_flops = 2 * 2 * 8 * 7 * 10;
  std::vector<std::string> names;
  for (const auto& result : report.at("cases")) {
    const std::string name = result.at("name");
    names.push_back(name);
    const double fused_ms = result.at("fused_ms");
    EXPECT_TRUE(std::isfinite(fused_ms) && fused_ms > 0.0) << name;
    const bool per_token_lff = name == "lff_forward" || name == "lff_forward_backward";
    const bool peg = name.rfind("peg", 0) == 0;
    const bool rope = name.rfind("rope", 0) == 0;
    EXPECT_EQ(result.contains("gbs"), peg || rope) << name;
    if (rope) {
      // q of B=2, N=5, C=2*4 read and the output written; the backward reads grad_output and
      // writes grad_q (fixed angles)
      const int64_t tensor_bytes = 2 * 5 * 8 * 4;
      EXPECT_EQ(result.at("bytes").get<int64_t>(),
                (name.find("backward") == std::string::npos ? 2 : 4) * tensor_bytes)
          << name;
    }
    ASSERT_EQ(result.contains("flops"), per_token_lff || peg) << name;
    if (!per_token_lff && !peg)
      continue;
    const int64_t forward_flops = peg ? peg_forward_flops : lff_forward_flops;
    const int64_t flops = result.at("flops");
    EXPECT_EQ(flops, name.find("backward") == std::string::npos ? forward_flops : 3 * forward_flops)
        << name;
    const double gflops = result.at("gflops"), bound_ms = result.at("compute_bound_ms");
    EXPECT_NEAR(gflops * fused_ms * 1e6, static_cast<double>(flops), 1e-6 * flops) << name;
    EXPECT_NEAR(bound_ms * matmul_gflops * 1e6, static_cast<double>(flops), 1e-6 * flops) << name;
  }
  EXPECT_EQ(names, (std::vector<std::string>{
                       "peg_forward", "peg_forward_backward", "lff_forward", "lff_forward_backward",
                       "rope_forward", "rope_forward_backward", "rope_half_forward",
                       "rope_half_forward_backward"}));
}
#endif  // POSENC_CLI_PATH

}  // namespace
}  // namespace posenc
