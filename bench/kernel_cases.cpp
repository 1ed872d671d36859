#include "kernel_cases.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdlib>

#include <torch/torch.h>

#include "posenc/encoding_registry.h"
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
  for (auto tensor : tensors)
    tensor.mutable_grad().reset();
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

std::vector<KernelCase> peg_cases(const PegShape& s) {
  torch::manual_seed(0);
  const TokenGrid grid{s.height, s.width, s.prefix};
  auto tokens = torch::randn({s.batch, grid.total_tokens(), s.channels});
  auto weight = torch::randn({s.channels, 1, s.kernel, s.kernel}) * 0.1;
  auto bias = torch::randn({s.channels});
  auto grad_output = torch::randn_like(tokens);
  const int64_t tensor_bytes = tokens.numel() * 4;
  const nlohmann::json shape = {{"B", s.batch},    {"H", s.height}, {"W", s.width},
                                {"C", s.channels}, {"k", s.kernel}, {"prefix", s.prefix}};
  using PegOp = torch::Tensor (*)(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                                  const TokenGrid&, PegPadding);
  auto forward = [=](PegOp op) {
    return [=] {
      torch::NoGradGuard no_grad;
      op(tokens, weight, bias, grid, PegPadding::Zeros);
    };
  };
  auto trainable_tokens = tokens.clone().requires_grad_(true);
  auto trainable_weight = weight.clone().requires_grad_(true);
  auto trainable_bias = bias.clone().requires_grad_(true);
  auto forward_backward = [=](PegOp op) {
    return [=] {
      op(trainable_tokens, trainable_weight, trainable_bias, grid, PegPadding::Zeros)
          .backward(grad_output);
      clear_gradients({trainable_tokens, trainable_weight, trainable_bias});
    };
  };
  // The convolution's multiply-adds, padding taps left out (the bias and residual adds are not
  // counted). The backward has as many again for the input gradient and for the weight gradient.
  const int64_t forward_flops =
      2 * s.batch * s.channels * taps_inside(s.height, s.kernel) * taps_inside(s.width, s.kernel);
  return {
      {"peg_forward", shape, 2 * tensor_bytes, forward(peg_conv_fused), forward(peg_conv_reference),
       "bytes: read tokens, write output", forward_flops},
      {"peg_forward_backward", shape, 5 * tensor_bytes, forward_backward(peg_conv_fused),
       forward_backward(peg_conv_reference),
       "bytes: forward 2x tokens; backward reads grad_output and tokens, writes grad_tokens",
       3 * forward_flops},
  };
}

std::vector<KernelCase> lff_cases(const LffShape& s) {
  torch::manual_seed(0);
  const std::string spec = "lff:F=" + std::to_string(s.fourier) + ",H=" + std::to_string(s.hidden) +
                           ",G=" + std::to_string(s.groups) + ",M=" + std::to_string(s.values);
  // shared ownership: every closure keeps the encoding alive
  auto additive = std::dynamic_pointer_cast<AdditiveEncodingImpl>(
      make_encoding(spec, {s.dim, TokenGrid{14, 14, 0}}).ptr());
  TORCH_CHECK(additive != nullptr, "lff is expected to be an additive encoding");
  auto positions = torch::rand({s.batch, s.tokens, s.groups, s.values}) * 14.0;
  const auto layout = TokenLayout::at_positions(positions);
  auto grad_output = torch::randn({s.batch, s.tokens, s.dim});
  const nlohmann::json shape = {{"B", s.batch},   {"N", s.tokens}, {"G", s.groups}, {"M", s.values},
                                {"F", s.fourier}, {"H", s.hidden}, {"D", s.dim}};
  auto forward = [=](bool fused) {
    return [=] {
      ScopedKernelPath path(fused);
      torch::NoGradGuard no_grad;
      additive->embedding(layout, positions.options());
    };
  };
  auto forward_backward = [=](bool fused) {
    return [=] {
      ScopedKernelPath path(fused);
      additive->embedding(layout, positions.options()).backward(grad_output);
      clear_gradients(additive->parameters());
    };
  };
  // The MLP's products on B*N*G rows: (F -> H) and (H -> D/G). The backward has two products per
  // layer (input and weight gradients); the input gradient of the first layer is needed too, for
  // the gradient of W_r.
  const int64_t rows = s.batch * s.tokens * s.groups;
  const int64_t forward_flops =
      2 * rows * (s.fourier * s.hidden + s.hidden * (s.dim / s.groups));  // G >= 1: checked above
  std::vector<KernelCase> cases = {
      {"lff_forward", shape, 0, forward(true), forward(false), "PE at per-token positions",
       forward_flops},
      {"lff_forward_backward", shape, 0, forward_backward(true), forward_backward(false),
       "gradients of every LFF parameter", 3 * forward_flops},
  };
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
