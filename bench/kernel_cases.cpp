#include "kernel_cases.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdlib>

#include <torch/torch.h>

#include "posenc/encoding_registry.h"
#include "posenc/kernels/fourier_features.h"
#include "posenc/kernels/fourier_mlp.h"
#include "posenc/kernels/kernel_settings.h"
#include "posenc/kernels/linear.h"
#include "posenc/kernels/peg_conv.h"

namespace posenc::bench {
namespace {

// "B,H,W,..." -> `count` non-negative integers (the benchmarks' own parser: bench/ does not use
// the CLI's)
std::vector<int64_t> parse_shape(const std::string& text, size_t count, const char* form) {
  std::vector<int64_t> values;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    int64_t value = 0;
    const auto [end, error] = std::from_chars(item.data(), item.data() + item.size(), value);
    TORCH_CHECK(!item.empty() && error == std::errc() && end == item.data() + item.size(),
                "shape '", text, "' must be ", form, ": '", item, "' is not an integer");
    values.push_back(value);
    start = comma + 1;
  }
  TORCH_CHECK(values.size() == count, "shape '", text, "' must be ", form, " (", count,
              " values), got ", values.size());
  for (int64_t value : values)
    TORCH_CHECK(value >= 0, "shape '", text, "' must be ", form, ": ", value, " is negative");
  return values;
}

void clear_gradients(const std::vector<torch::Tensor>& tensors) {
  for (auto tensor : tensors) {
    if (tensor.defined())
      tensor.mutable_grad().reset();
  }
}

// (output, tap) pairs of a k-tap zero-padded convolution along an axis of `length` whose tap
// reads a position inside the axis: output o's tap t reads o + t - k/2.
int64_t taps_inside(int64_t length, int64_t kernel) {
  int64_t pairs = 0;
  for (int64_t tap = 0; tap < kernel; ++tap) {
    const int64_t shift = tap - kernel / 2;
    pairs += std::max<int64_t>(0, length - std::abs(shift));
  }
  return pairs;
}

std::string describe(const std::vector<int64_t>& sizes) {
  std::string text = "(";
  for (size_t i = 0; i < sizes.size(); ++i)
    text += (i ? ", " : "") + std::to_string(sizes[i]);
  return text + ")";
}

std::vector<int64_t> with_last(std::vector<int64_t> sizes, int64_t last) {
  sizes.back() = last;
  return sizes;
}

}  // namespace

PegShape parse_peg_shape(const std::string& text) {
  auto v = parse_shape(text, 6, "B,H,W,C,k,prefix");
  return {v[0], v[1], v[2], v[3], v[4], v[5]};
}

LffShape parse_lff_shape(const std::string& text) {
  auto v = parse_shape(text, 7, "B,N,G,M,F,H,D");
  return {v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
}

RopeShape parse_rope_shape(const std::string& text) {
  auto v = parse_shape(text, 5, "B,N,prefix,heads,head_dim");
  TORCH_CHECK(v[2] <= v[1], "rope shape '", text, "': prefix ", v[2], " exceeds N = ", v[1]);
  TORCH_CHECK(v[3] >= 1 && v[4] >= 2 && v[4] % 2 == 0, "rope shape '", text,
              "': heads must be at least 1 and head_dim even (pairs of channels turn together)");
  RopeShape shape;
  shape.batch = v[0];
  shape.tokens = v[1];
  shape.prefix = v[2];
  shape.heads = v[3];
  shape.head_dim = v[4];
  return shape;
}


std::vector<torch::Tensor> KernelProblem::output_and_gradients(bool fused_path,
                                                               torch::ScalarType dtype) const {
  std::vector<torch::Tensor> arguments;
  for (size_t i = 0; i < inputs.size(); ++i) {
    arguments.push_back(inputs[i].defined()
                            ? inputs[i].to(dtype).detach().requires_grad_(trainable[i])
                            : torch::Tensor());
  }
  auto output = (fused_path ? fused : reference)(arguments);
  if (std::any_of(trainable.begin(), trainable.end(), [](bool wanted) { return wanted; }))
    output.backward(grad_output.to(dtype));
  std::vector<torch::Tensor> results{output.detach()};
  for (size_t i = 0; i < arguments.size(); ++i)
    results.push_back(trainable[i] ? arguments[i].grad() : torch::Tensor());
  return results;
}

KernelProblem peg_problem(const PegShape& s) {
  torch::manual_seed(3);
  const TokenGrid grid{s.height, s.width, s.prefix};
  KernelProblem problem;
  problem.kernel = "peg_conv";
  problem.shape = "B=" + std::to_string(s.batch) + " " + std::to_string(s.height) + "x" +
                  std::to_string(s.width) + " C=" + std::to_string(s.channels) +
                  " k=" + std::to_string(s.kernel) + " prefix=" + std::to_string(s.prefix) + " " +
                  to_string(s.padding) + (s.bias ? "" : " no bias");
  problem.input_names = {"tokens", "weight", "bias"};
  problem.inputs = {torch::randn({s.batch, grid.total_tokens(), s.channels}),
                    torch::randn({s.channels, 1, s.kernel, s.kernel}),
                    s.bias ? torch::randn({s.channels}) : torch::Tensor()};
  problem.trainable = {true, true, s.bias};
  problem.grad_output = torch::randn_like(problem.inputs[0]);
  auto run = [grid, padding = s.padding](auto op) {
    return [=](const std::vector<torch::Tensor>& in) {
      return op(in[0], in[1], in[2], grid, padding);
    };
  };
  problem.fused = run(peg_conv_fused);
  problem.reference = run(peg_conv_reference);
  problem.output_tolerance = problem.gradient_tolerance = {1e-5, 1e-4};
  // The convolution's multiply-adds, padding taps left out (the bias and residual adds are not
  // counted). The backward has as many again for the input gradient and for the weight gradient.
  problem.forward_flops =
      2 * s.batch * s.channels * taps_inside(s.height, s.kernel) * taps_inside(s.width, s.kernel);
  problem.backward_flops = 2 * problem.forward_flops;
  const int64_t tensor_bytes = problem.inputs[0].numel() * 4;
  problem.forward_bytes = 2 * tensor_bytes;   // read tokens, write output
  problem.backward_bytes = 3 * tensor_bytes;  // read grad_output and tokens, write grad_tokens
  return problem;
}

KernelProblem fourier_features_problem(const FourierFeaturesShape& s) {
  torch::manual_seed(5);
  KernelProblem problem;
  problem.kernel = "fourier_features";
  problem.shape = "positions " + describe(s.positions) + ", F/2 = " + std::to_string(s.frequencies);
  problem.input_names = {"positions", "W_r"};
  problem.inputs = {torch::rand(s.positions) * 20.0 - 5.0,
                    torch::randn({s.frequencies, s.positions.back()})};
  problem.trainable = {true, true};
  problem.grad_output = torch::randn(with_last(s.positions, 2 * s.frequencies));
  problem.fused = [](const std::vector<torch::Tensor>& in) {
    return fourier_features_fused(in[0], in[1]);
  };
  problem.reference = [](const std::vector<torch::Tensor>& in) {
    return fourier_features_reference(in[0], in[1]);
  };
  // float32 arguments of |x w| up to ~100: the argument itself carries ~1e-5 relative error
  problem.output_tolerance = {1e-4, 2e-5};
  problem.gradient_tolerance = {1e-4, 1e-3};
  return problem;
}

KernelProblem fourier_mlp_problem(const FourierMlpShape& s) {
  torch::manual_seed(11);
  KernelProblem problem;
  problem.kernel = "fourier_mlp";
  problem.shape = "positions " + describe(s.positions) + ", F/2 = " +
                  std::to_string(s.frequencies) + ", H = " + std::to_string(s.hidden) +
                  ", O = " + std::to_string(s.outputs);
  problem.input_names = {"positions", "W_r", "W_1", "b_1", "W_2", "b_2"};
  problem.inputs = {torch::rand(s.positions) * 14.0,
                    torch::randn({s.frequencies, s.positions.back()}) * s.frequency_scale,
                    torch::randn({s.hidden, 2 * s.frequencies}),
                    torch::randn({s.hidden}),
                    torch::randn({s.outputs, s.hidden}) * 0.3,
                    torch::randn({s.outputs})};
  problem.trainable = {s.positions_trainable, true, true, true, true, true};
  problem.grad_output = torch::randn(with_last(s.positions, s.outputs));
  problem.fused = [](const std::vector<torch::Tensor>& in) {
    return fourier_mlp_fused(in[0], in[1], in[2], in[3], in[4], in[5]);
  };
  problem.reference = [](const std::vector<torch::Tensor>& in) {
    return fourier_mlp_reference(in[0], in[1], in[2], in[3], in[4], in[5]);
  };
  problem.output_tolerance = problem.gradient_tolerance = {1e-4, 1e-3};
  // The MLP's products on the P rows: (F -> H) and (H -> O). The backward has two products per
  // layer (input and weight gradients); the input gradient of the first layer is needed too, for
  // the gradient of W_r.
  const int64_t rows = problem.inputs[0].numel() / s.positions.back();
  problem.forward_flops = 2 * rows * (2 * s.frequencies * s.hidden + s.hidden * s.outputs);
  problem.backward_flops = 2 * problem.forward_flops;
  return problem;
}

KernelProblem linear_problem(const LinearShape& s) {
  torch::manual_seed(7);
  KernelProblem problem;
  problem.kernel = "linear";
  problem.shape = "input " + describe(s.input) + ", N = " + std::to_string(s.outputs) +
                  (s.bias ? "" : ", no bias");
  problem.input_names = {"input", "weight", "bias"};
  problem.inputs = {torch::randn(s.input), torch::randn({s.outputs, s.input.back()}),
                    s.bias ? torch::randn({s.outputs}) : torch::Tensor()};
  problem.trainable = {true, true, s.bias};
  problem.grad_output = torch::randn(with_last(s.input, s.outputs));
  problem.fused = [](const std::vector<torch::Tensor>& in) {
    return linear_fused(in[0], in[1], in[2]);
  };
  problem.reference = [](const std::vector<torch::Tensor>& in) {
    return linear_reference(in[0], in[1], in[2]);
  };
  problem.output_tolerance = problem.gradient_tolerance = {1e-4, 1e-3};
  const int64_t rows = problem.inputs[0].numel() / s.input.back();
  problem.forward_flops = 2 * rows * s.input.back() * s.outputs;
  problem.backward_flops = 2 * problem.forward_flops;
  return problem;
}

KernelProblem rope_problem(const RopeShape& s) {
  torch::manual_seed(13);
  const int64_t channels = s.heads * s.head_dim, positioned = s.tokens - s.prefix;
  KernelProblem problem;
  problem.kernel = "rotate_pairs";
  problem.shape = "B=" + std::to_string(s.batch) + " N=" + std::to_string(s.tokens) +
                  " prefix=" + std::to_string(s.prefix) + " heads=" + std::to_string(s.heads) +
                  " head_dim=" + std::to_string(s.head_dim) + " " + to_string(s.pairs) +
                  (s.per_image_angles ? " per-image angles" : "") +
                  (s.angles_trainable ? "" : " fixed angles") + (s.qkv_view ? " qkv view" : "");
  problem.input_names = {s.qkv_view ? "qkv" : "tokens", "angles"};
  problem.inputs = {
      torch::randn({s.batch, s.tokens, (s.qkv_view ? 3 : 1) * channels}),
      torch::rand({s.per_image_angles ? s.batch : 1, positioned, s.heads, s.head_dim / 2}) * 8.0 -
          4.0};
  problem.trainable = {true, s.angles_trainable};
  problem.grad_output = torch::randn({s.batch, s.tokens, channels});
  auto run = [s, channels](auto op) {
    return [=](const std::vector<torch::Tensor>& in) {
      // the q of (B, N, 3C): token stride 3C
      const auto tokens = s.qkv_view ? in[0].narrow(2, 0, channels) : in[0];
      return op(tokens, in[1], s.prefix, s.pairs);
    };
  };
  problem.fused = run(rotate_pairs_fused);
  problem.reference = run(rotate_pairs_reference);
  // the angle gradients sum over the images
  problem.output_tolerance = {1e-5, 1e-5};
  problem.gradient_tolerance = {1e-4, 1e-4};
  const int64_t tensor_bytes = s.batch * s.tokens * channels * 4;
  problem.forward_bytes = 2 * tensor_bytes;   // read tokens, write output
  // read grad_output (and tokens, for the angles' gradient), write grad_tokens
  problem.backward_bytes = (s.angles_trainable ? 3 : 2) * tensor_bytes;
  return problem;
}

std::vector<KernelProblem> kernel_test_problems() {
  std::vector<KernelProblem> problems;
  using P = PegPadding;
  // Channel counts cover a whole block of vectors, single vectors and a partial vector at both
  // vector widths (8 and 16 lanes), and fewer channels than one vector.
  for (const PegShape& shape : std::vector<PegShape>{
           {2, 5, 7, 19, 3, 1, P::Zeros, true},
           {3, 1, 1, 8, 7, 0, P::Circular, true},
           {1, 6, 3, 33, 5, 1, P::Replicate, true},
           {2, 14, 14, 192, 3, 0, P::Zeros, true},
           {1, 4, 9, 83, 1, 1, P::Zeros, true},
           {2, 3, 2, 17, 7, 0, P::Replicate, false},
           {2, 7, 5, 48, 5, 0, P::Circular, true},
           {1, 2, 2, 3, 3, 1, P::Zeros, true},
           {2, 9, 4, 72, 7, 1, P::Zeros, false},
           {1, 5, 6, 100, 3, 1, P::Replicate, true},
           // wide enough rows for interior tiles at every padding and k = 5, 7
           {2, 6, 11, 24, 3, 1, P::Circular, true},
           {1, 8, 12, 40, 5, 0, P::Circular, true},
           {1, 10, 12, 20, 7, 1, P::Replicate, true},
           {1, 3, 13, 9, 9, 0, P::Zeros, true},  // k = 9: the generic tap-gradient path
       })
    problems.push_back(peg_problem(shape));
  for (const FourierFeaturesShape& shape : std::vector<FourierFeaturesShape>{
           {{37, 2}, 64}, {{5, 1}, 1}, {{3, 11, 4}, 67}, {{2, 7, 1, 2}, 21},
           {{1, 3}, 8}, {{200, 2}, 16}, {{4, 5, 2, 2}, 33}, {{9, 20}, 40}})
    problems.push_back(fourier_features_problem(shape));
  // Rows across several 256-row tiles with a partial last one, more tiles than the backward's 16
  // chunks, no rows at all, and widths that leave partial vectors at 8 and 16 lanes.
  for (const FourierMlpShape& shape : std::vector<FourierMlpShape>{
           {{600, 2}, 64, 64, 192},      // the benchmark's widths: tiles of 256, 256 and 88 rows
           {{5, 1}, 1, 3, 2},            // one frequency, narrow layers
           {{3, 11, 4}, 5, 17, 9},       // odd widths everywhere
           {{2, 150, 1, 2}, 8, 16, 24},  // LFF's (B, N, G, M)
           {{4500, 2}, 4, 8, 5},         // 18 tiles: chunks of one and two tiles
           {{0, 2}, 4, 8, 6},            // no positions
       })
    problems.push_back(fourier_mlp_problem(shape));
  for (const LinearShape& shape : std::vector<LinearShape>{
           {{12544 / 16, 128}, 64, true},  // the LFF MLP's first layer, fewer positions
           {{3, 17, 64}, 192, true},       // 3-D input, the second layer
           {{5, 7}, 1, false},             // one output, no bias
           {{9, 1}, 13, true},             // one input feature
           {{31}, 4, true},                // 1-D input
           {{0, 6}, 5, true},              // no rows
       })
    problems.push_back(linear_problem(shape));
  // Pair counts that fill whole vectors and leave partial ones at 8 and 16 lanes, head_dim 2, one
  // and no positioned token, prefix 0 to 2, shared and per-image angles, fixed and learnt.
  using R = RotaryPairs;
  for (const RopeShape& shape : std::vector<RopeShape>{
           {2, 5, 1, 3, 18, R::Half, false, true, true},           // 9 pairs: partial vectors
           {3, 7, 0, 2, 34, R::Interleaved, false, true, false},   // C = 68: 4 lanes left over
           {2, 197, 1, 6, 64, R::Half, false, true, true},         // the benchmark's token
           {2, 50, 1, 6, 64, R::Interleaved, false, true, true},   //   and head sizes
           {2, 12, 2, 1, 2, R::Interleaved, true, true, false},    // head_dim 2, per image
           {4, 9, 0, 4, 16, R::Half, true, false, false},          // per image, angles as data
           {1, 2, 1, 2, 8, R::Interleaved, false, true, true},     // one positioned token
           {2, 30, 1, 3, 32, R::Interleaved, false, false, true},  // rope_axial: fixed angles
           {3, 17, 0, 5, 6, R::Half, true, true, true},            // 3 pairs, fewer than a vector
           {2, 1, 1, 2, 8, R::Half, false, true, false},           // no positioned token
       })
    problems.push_back(rope_problem(shape));
  return problems;
}

std::vector<KernelCase> timed_cases(const KernelProblem& problem, const std::string& name,
                                    const nlohmann::json& shape, const std::string& note) {
  auto forward = [&problem](const KernelProblem::Operation& op) {
    return [op, inputs = problem.inputs] {
      torch::NoGradGuard no_grad;
      op(inputs);
    };
  };
  std::vector<torch::Tensor> trained;
  for (size_t i = 0; i < problem.inputs.size(); ++i) {
    trained.push_back(problem.inputs[i].defined()
                          ? problem.inputs[i].clone().requires_grad_(problem.trainable[i])
                          : torch::Tensor());
  }
  auto forward_backward = [&](const KernelProblem::Operation& op) {
    return [op, trained, grad_output = problem.grad_output] {
      op(trained).backward(grad_output);
      clear_gradients(trained);
    };
  };
  return {
      {name + "_forward", shape, problem.forward_bytes, forward(problem.fused),
       forward(problem.reference), note, problem.forward_flops},
      {name + "_forward_backward", shape, problem.forward_bytes + problem.backward_bytes,
       forward_backward(problem.fused), forward_backward(problem.reference),
       note + "; gradients of every trained input",
       problem.forward_flops + problem.backward_flops},
  };
}

std::vector<KernelCase> peg_cases(const PegShape& s) {
  const nlohmann::json shape = {{"B", s.batch},    {"H", s.height}, {"W", s.width},
                                {"C", s.channels}, {"k", s.kernel}, {"prefix", s.prefix}};
  return timed_cases(peg_problem(s), "peg", shape,
                     "bytes: forward reads tokens, writes output; backward reads grad_output and "
                     "tokens, writes grad_tokens");
}

std::vector<KernelCase> lff_cases(const LffShape& s) {
  TORCH_CHECK(s.groups >= 1 && s.dim % s.groups == 0, "the LFF shape's D = ", s.dim,
              " must be a multiple of G = ", s.groups);
  const nlohmann::json shape = {{"B", s.batch},   {"N", s.tokens}, {"G", s.groups}, {"M", s.values},
                                {"F", s.fourier}, {"H", s.hidden}, {"D", s.dim}};
  // W_r at LFF's initial scale (gamma = 10) rather than N(0, 1): arguments of a few radians
  auto cases = timed_cases(
      fourier_mlp_problem({{s.batch, s.tokens, s.groups, s.values},
                           s.fourier / 2,
                           s.hidden,
                           s.dim / s.groups,
                           0.1,
                           /*positions_trainable=*/false}),
      "lff", shape, "PE at per-token positions");
  torch::manual_seed(0);
  const std::string spec = "lff:F=" + std::to_string(s.fourier) + ",H=" + std::to_string(s.hidden) +
                           ",G=" + std::to_string(s.groups) + ",M=" + std::to_string(s.values);
  // shared ownership: every closure keeps the encoding alive
  auto additive = std::dynamic_pointer_cast<AdditiveEncodingImpl>(
      make_encoding(spec, {s.dim, TokenGrid{14, 14, 0}}).ptr());
  TORCH_CHECK(additive != nullptr, "lff is expected to be an additive encoding");
  if (s.groups == 1 && s.values == 2) {
    const TokenGrid grid{14, 14, 1};
    for (int64_t batch : {int64_t{1}, s.batch}) {
      auto tokens = torch::randn({batch, grid.total_tokens(), s.dim});
      auto inference = [=](bool cached) {
        return [=] {
          torch::NoGradGuard no_grad;
          if (!cached)
            additive->clear_embedding_cache();
          additive->forward(tokens, grid);
        };
      };
      cases.push_back({"lff_grid_inference_b" + std::to_string(batch),
                       {{"B", batch}, {"grid", "14x14+1"}, {"D", s.dim}},
                       0,
                       inference(true),
                       inference(false),
                       "tokens + PE in inference; fused = PE cached per grid, reference = PE "
                       "recomputed every call"});
    }
  }
  return cases;
}

std::vector<KernelCase> rope_cases(const RopeShape& s) {
  std::vector<KernelCase> cases;
  // interleaved pairs as timm's vit_*_rope_* (naver's RoPE-ViT), rotate-half as EVA-02 and DINOv3
  for (RotaryPairs pairs : {RotaryPairs::Interleaved, RotaryPairs::Half}) {
    RopeShape shape = s;
    shape.pairs = pairs;
    const nlohmann::json json_shape = {{"B", s.batch},         {"N", s.tokens},
                                       {"prefix", s.prefix},   {"heads", s.heads},
                                       {"head_dim", s.head_dim}, {"pairs", to_string(pairs)}};
    const std::string name = pairs == RotaryPairs::Interleaved ? "rope" : "rope_half";
    for (auto& timed : timed_cases(
             rope_problem(shape), name, json_shape,
             "q (the q view of a (B, N, 3C) qkv product) turned by fixed angles, one table for "
             "every image, cos and sin of the angles computed in the call; bytes: forward reads "
             "q, writes output; backward reads grad_output, writes grad_q"))
      cases.push_back(std::move(timed));
  }
  return cases;
}

double median_seconds(const std::function<void()>& run, int repeats, int warmup) {
  using Clock = std::chrono::steady_clock;
  for (int i = 0; i < warmup; ++i)
    run();
  std::vector<double> times;
  for (int i = 0; i < std::max(1, repeats); ++i) {
    const auto start = Clock::now();
    run();
    times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

double copy_bandwidth_gbs(int64_t bytes, int repeats) {
  auto source = torch::rand({std::max<int64_t>(1, bytes / 4)});
  auto target = torch::empty_like(source);
  const double seconds = median_seconds([&] { target.copy_(source); }, repeats);
  return 2.0 * static_cast<double>(source.numel() * 4) / seconds / 1e9;
}

double matmul_gflops(int64_t size, int repeats) {
  torch::NoGradGuard no_grad;
  auto left = torch::rand({size, size});
  auto right = torch::rand({size, size});
  const double seconds =
      median_seconds([&] { posenc::linear_fused(left, right, torch::Tensor()); }, repeats);
  return 2.0 * static_cast<double>(size * size * size) / seconds / 1e9;
}

}  // namespace posenc::bench
