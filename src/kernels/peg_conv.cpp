#include "posenc/kernels/peg_conv.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <vector>

#include "kernels/simd_dispatch.h"
#include "posenc/kernels/kernel_settings.h"

namespace posenc {
namespace {

namespace F = torch::nn::functional;

// AxisTaps with its storage: which input index each padded position holds, and the inverse
// lists that the backward pass gathers from.
class AxisTapTables {
 public:
  AxisTapTables(int64_t length, int64_t kernel, PegPadding padding)
      : padded_(length + kernel - 1), reader_offsets_(length + 1, 0) {
    const int64_t half = kernel / 2;
    for (int64_t position = 0; position < length + kernel - 1; ++position) {
      int64_t in = position - half;
      if (in < 0 || in >= length) {
        switch (padding) {
          case PegPadding::Zeros:
            in = -1;
            break;
          case PegPadding::Circular:
            in = ((in % length) + length) % length;
            break;
          case PegPadding::Replicate:
            in = std::clamp<int64_t>(in, 0, length - 1);
            break;
        }
      }
      padded_[position] = static_cast<int32_t>(in);
    }
    for (int64_t out = 0; out < length; ++out) {
      for (int64_t tap = 0; tap < kernel; ++tap) {
        const int32_t in = padded_[out + tap];
        if (in >= 0)
          ++reader_offsets_[in + 1];
      }
    }
    for (int64_t in = 0; in < length; ++in)
      reader_offsets_[in + 1] += reader_offsets_[in];
    readers_.resize(2 * static_cast<size_t>(reader_offsets_[length]));
    std::vector<int32_t> filled(reader_offsets_.begin(), reader_offsets_.end() - 1);
    for (int64_t out = 0; out < length; ++out) {
      for (int64_t tap = 0; tap < kernel; ++tap) {
        const int32_t in = padded_[out + tap];
        if (in < 0)
          continue;
        const int32_t slot = filled[in]++;
        readers_[2 * slot] = static_cast<int32_t>(out);
        readers_[2 * slot + 1] = static_cast<int32_t>(tap);
      }
    }
  }

  kernels::AxisTaps view() const {
    return {padded_.data(), readers_.data(), reader_offsets_.data()};
  }

 private:
  std::vector<int32_t> padded_;
  std::vector<int32_t> readers_;
  std::vector<int32_t> reader_offsets_;
};

// Everything one PEG call shares between forward and backward.
struct PegSetup {
  PegSetup(const TokenGrid& grid, int64_t channels, int64_t kernel, PegPadding padding,
           const torch::Tensor& weight, const torch::Tensor& bias, bool for_backward)
      : rows(grid.height, kernel, padding),
        columns(grid.width, kernel, padding),
        // weight (C, 1, k, k) -> taps (k*k, C)
        taps(weight.reshape({channels, kernel * kernel}).t().contiguous()),
        bias(bias.numel() > 0 ? bias.contiguous() : torch::Tensor()) {
    // The transposed convolution of a zero- or circular-padded one is the same convolution with
    // the taps reversed; replicate padding sends border reads back to one token, a gather.
    if (for_backward && padding != PegPadding::Replicate)
      flipped_taps = taps.flip(0);
    problem.height = grid.height;
    problem.width = grid.width;
    problem.channels = channels;
    problem.prefix = grid.prefix_tokens;
    problem.kernel = kernel;
    problem.rows = rows.view();
    problem.columns = columns.view();
    problem.taps = taps.data_ptr<float>();
    problem.bias = this->bias.defined() ? this->bias.data_ptr<float>() : nullptr;
    problem.flipped_taps = flipped_taps.defined() ? flipped_taps.data_ptr<float>() : nullptr;
  }

  AxisTapTables rows, columns;
  torch::Tensor taps, bias, flipped_taps;
  kernels::PegProblem problem;
};

// Kernels index channels contiguously; batch and token strides may be anything.
torch::Tensor with_contiguous_channels(const torch::Tensor& tokens) {
  return tokens.stride(2) == 1 ? tokens : tokens.contiguous();
}

kernels::ConstTokenTensor const_view(const torch::Tensor& tokens) {
  return {tokens.data_ptr<float>(), tokens.stride(0), tokens.stride(1)};
}

// A fresh output tensor (B, N, C) as the kernels write it; whole channel vectors go around the
// caches when it is large and 64-byte aligned.
kernels::TokenTensor output_view(torch::Tensor& tokens) {
  constexpr int64_t kFloatBytes = sizeof(float);
  auto aligned = [](int64_t bytes) { return bytes % 64 == 0; };
  const bool stream = tokens.numel() * kFloatBytes >= streaming_threshold_bytes() &&
                      aligned(reinterpret_cast<intptr_t>(tokens.data_ptr<float>())) &&
                      aligned(tokens.stride(0) * kFloatBytes) &&
                      aligned(tokens.stride(1) * kFloatBytes);
  return {tokens.data_ptr<float>(), tokens.stride(0), tokens.stride(1), stream};
}

// Enough rows per task that a task does at least ~32k multiply-adds.
int64_t row_grain(const TokenGrid& grid, int64_t channels, int64_t kernel) {
  return std::max<int64_t>(1,
                           32768 / std::max<int64_t>(1, grid.width * channels * kernel * kernel));
}

class PegConvFunction : public torch::autograd::Function<PegConvFunction> {
 public:
  // tokens (B, N, C), weight (C, 1, k, k), bias (C) or (0) for none -> (B, N, C)
  // (autograd functions take no undefined tensors, hence the empty bias)
  static torch::Tensor forward(torch::autograd::AutogradContext* context, torch::Tensor tokens,
                               const torch::Tensor& weight, const torch::Tensor& bias,
                               int64_t height, int64_t width, int64_t prefix, int64_t padding) {
    const TokenGrid grid{height, width, prefix};
    tokens = with_contiguous_channels(tokens);
    const int64_t channels = tokens.size(2), kernel = weight.size(2);
    PegSetup setup(grid, channels, kernel, static_cast<PegPadding>(padding), weight, bias,
                   /*for_backward=*/false);
    auto output = torch::empty(tokens.sizes(), tokens.options());
    const auto input_view = const_view(tokens);
    const auto output_tokens = output_view(output);
    const auto& kernels = kernels::active_kernels();
    at::parallel_for(0, tokens.size(0) * height, row_grain(grid, channels, kernel),
                     [&](int64_t begin, int64_t end) {
                       kernels.peg_forward(setup.problem, input_view, output_tokens, begin, end);
                     });
    context->save_for_backward({tokens, weight, bias});
    context->saved_data["grid"] = std::vector<int64_t>{height, width, prefix, padding};
    return output;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto saved = context->get_saved_variables();
    const auto& tokens = saved[0];
    const auto& weight = saved[1];
    const auto& bias = saved[2];
    const auto shape = context->saved_data["grid"].toIntVector();
    const TokenGrid grid{shape[0], shape[1], shape[2]};
    const int64_t channels = tokens.size(2), kernel = weight.size(2);
    PegSetup setup(grid, channels, kernel, static_cast<PegPadding>(shape[3]), weight, bias,
                   /*for_backward=*/true);
    auto grad_output = with_contiguous_channels(grad_outputs[0].to(tokens.scalar_type()));
    auto grad_tokens = torch::empty(tokens.sizes(), tokens.options());

    // Each chunk of rows sums its own weight and bias gradients: (k*k*C + C) floats per chunk.
    // A fixed chunk count keeps the summation order independent of the thread count.
    const int64_t rows = tokens.size(0) * grid.height;
    const int64_t chunks = std::min<int64_t>(rows, 64);
    const int64_t per_chunk = kernel * kernel * channels + channels;
    auto partial_sums = torch::zeros({std::max<int64_t>(chunks, 1), per_chunk}, tokens.options());
    float* partial = partial_sums.data_ptr<float>();
    const bool with_bias = bias.numel() > 0;
    const auto grad_output_view = const_view(grad_output);
    const auto input_view = const_view(tokens);
    const auto grad_tokens_view = output_view(grad_tokens);
    const auto& kernels = kernels::active_kernels();
    at::parallel_for(0, chunks, 1, [&](int64_t first, int64_t last) {
      for (int64_t chunk = first; chunk < last; ++chunk) {
        float* sums = partial + chunk * per_chunk;
        kernels.peg_backward(setup.problem, grad_output_view, input_view, grad_tokens_view, sums,
                             with_bias ? sums + kernel * kernel * channels : nullptr,
                             rows * chunk / chunks, rows * (chunk + 1) / chunks);
      }
    });
    auto summed = partial_sums.sum(0);  // (k*k*C + C)
    // taps (k*k, C) -> weight (C, 1, k, k)
    auto grad_weight = summed.narrow(0, 0, kernel * kernel * channels)
                           .reshape({kernel * kernel, channels})
                           .t()
                           .reshape(weight.sizes())
                           .contiguous();
    torch::Tensor grad_bias;
    if (with_bias)
      grad_bias = summed.narrow(0, kernel * kernel * channels, channels).clone();
    return {grad_tokens,     grad_weight,     grad_bias,      torch::Tensor(),
            torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

void check_arguments(const torch::Tensor& tokens, const torch::Tensor& weight,
                     const torch::Tensor& bias, const TokenGrid& grid) {
  grid.validate();
  TORCH_CHECK(tokens.dim() == 3 && tokens.size(1) == grid.total_tokens(),
              "peg_conv: tokens must be (B, N, C) with N = ", grid.total_tokens(), " (",
              grid.describe(), "), got ", tokens.sizes());
  const int64_t channels = tokens.size(2);
  TORCH_CHECK(weight.dim() == 4 && weight.size(0) == channels && weight.size(1) == 1 &&
                  weight.size(2) == weight.size(3) && weight.size(2) % 2 == 1,
              "peg_conv: weight must be (C, 1, k, k) with C = ", channels, " and k odd, got ",
              weight.sizes());
  TORCH_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == channels),
              "peg_conv: bias must be (C) with C = ", channels, ", got ", bias.sizes());
}

}  // namespace

std::string to_string(PegPadding padding) {
  switch (padding) {
    case PegPadding::Zeros:
      return "zeros";
    case PegPadding::Circular:
      return "circular";
    case PegPadding::Replicate:
      return "replicate";
  }
  return "unknown";
}

PegPadding parse_peg_padding(const std::string& name) {
  for (PegPadding padding : {PegPadding::Zeros, PegPadding::Circular, PegPadding::Replicate})
    if (name == to_string(padding))
      return padding;
  TORCH_CHECK(false, "unknown PEG padding '", name, "'; use zeros, circular or replicate");
}

bool peg_conv_fused_applies(const torch::Tensor& tokens, const torch::Tensor& weight) {
  return tokens.device().is_cpu() && tokens.scalar_type() == torch::kFloat &&
         weight.device().is_cpu() && weight.scalar_type() == torch::kFloat;
}

torch::Tensor peg_conv(const torch::Tensor& tokens, const torch::Tensor& weight,
                       const torch::Tensor& bias, const TokenGrid& grid, PegPadding padding) {
  if (fused_kernels_enabled() && peg_conv_fused_applies(tokens, weight))
    return peg_conv_fused(tokens, weight, bias, grid, padding);
  return peg_conv_reference(tokens, weight, bias, grid, padding);
}

torch::Tensor peg_conv_fused(const torch::Tensor& tokens, const torch::Tensor& weight,
                             const torch::Tensor& bias, const TokenGrid& grid, PegPadding padding) {
  check_arguments(tokens, weight, bias, grid);
  TORCH_CHECK(peg_conv_fused_applies(tokens, weight),
              "peg_conv_fused runs float32 CPU tensors; got tokens ", tokens.scalar_type(), " on ",
              tokens.device(), ", weight ", weight.scalar_type(), " on ", weight.device(),
              "; use peg_conv, which falls back to the reference path");
  TORCH_CHECK(!bias.defined() || bias.scalar_type() == torch::kFloat,
              "peg_conv_fused: bias must be float32 like the weight, got ", bias.scalar_type());
  const auto bias_or_empty = bias.defined() ? bias : torch::empty({0}, weight.options());
  return PegConvFunction::apply(tokens, weight, bias_or_empty, grid.height, grid.width,
                                grid.prefix_tokens, static_cast<int64_t>(padding));
}

torch::Tensor peg_conv_reference(const torch::Tensor& tokens, const torch::Tensor& weight,
                                 const torch::Tensor& bias, const TokenGrid& grid,
                                 PegPadding padding) {
  check_arguments(tokens, weight, bias, grid);
  const int64_t batch = tokens.size(0);
  const int64_t channels = tokens.size(2);
  const int64_t half = weight.size(2) / 2;
  auto prefix = tokens.narrow(1, 0, grid.prefix_tokens);  // (B, prefix, C)
  // (B, H*W, C) -> (B, C, H, W), a channels-last view without a copy
  auto image = tokens.narrow(1, grid.prefix_tokens, grid.grid_tokens())
                   .reshape({batch, grid.height, grid.width, channels})
                   .permute({0, 3, 1, 2});
  torch::Tensor convolved;
  if (padding == PegPadding::Zeros) {
    convolved =
        F::conv2d(image, weight, F::Conv2dFuncOptions().bias(bias).padding(half).groups(channels));
  } else {
    // Circular or replicate padding by gathering rows and columns, which, unlike F::pad, works
    // for any pad width on any grid (a 1x1 grid with k = 7 included).
    auto source_index = [&](int64_t length) {
      auto index = torch::arange(-half, length + half,
                                 torch::TensorOptions(torch::kLong).device(image.device()));
      return padding == PegPadding::Circular ? torch::remainder(index, length)
                                             : torch::clamp(index, 0, length - 1);
    };
    auto padded =
        image.index_select(2, source_index(grid.height)).index_select(3, source_index(grid.width));
    convolved = F::conv2d(padded, weight, F::Conv2dFuncOptions().bias(bias).groups(channels));
  }
  // (B, C, H, W) -> (B, H*W, C)
  auto updated = (image + convolved).permute({0, 2, 3, 1}).reshape({batch, -1, channels});
  return torch::cat({prefix, updated}, 1);
}

}  // namespace posenc
