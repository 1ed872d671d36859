#pragma once
// The raw-pointer interface between the dispatching code (src/kernels/*.cpp with LibTorch) and the
// kernel bodies compiled once per instruction set (simd_scalar.cpp, simd_avx2.cpp,
// simd_avx512.cpp). Nothing here includes LibTorch, so the per-ISA translation units share no
// inline code with the rest of the program that could be compiled with the wrong -m flags.
// All tensors are float32; "stride" counts floats.
#include <cstdint>

namespace posenc::kernels {

// For one grid axis of length L and a k-tap filter: which input index each padded position holds
// (the padding mode lives here; output o reads padded position o + t at tap t), and, inverted,
// which (output, tap) pairs read each input.
struct AxisTaps {
  const int32_t* padded = nullptr;   // (L + k - 1): input index at position e - k/2, -1 = zero pad
  const int32_t* readers = nullptr;  // pairs (o, t), grouped by input index
  const int32_t* reader_offsets =
      nullptr;  // (L + 1): input i's pairs are [offsets[i], offsets[i+1])
};

// PEG: out = tokens + depthwise_conv(tokens) + bias on the grid tokens, prefix tokens copied.
// Tokens are (B, N, C) with N = prefix + H * W and channels contiguous.
struct PegProblem {
  int64_t height = 0, width = 0, channels = 0, prefix = 0, kernel = 0;
  AxisTaps rows, columns;
  const float* taps = nullptr;  // (k * k, C): weight[c, 0, di, dj] at taps[(di * k + dj) * C + c]
  const float* bias = nullptr;  // (C) or null
  // (k * k, C): the taps in reverse order, taps[k * k - 1 - t]; set when the transposed
  // convolution is this convolution with flipped taps (zero and circular padding), so the
  // register-tiled kernels (k = 1, 3, 5, 7) compute the input gradient as the forward on
  // grad_output. Null, or another k: the input gradient gathers through `readers`.
  const float* flipped_taps = nullptr;
};

// Counts one grid row written through a streaming path (streamed_peg_rows() reads the count).
void count_streamed_row();

struct TokenTensor {
  float* data = nullptr;
  int64_t batch_stride = 0, token_stride = 0;
  // Whole channel vectors may be written with non-temporal stores, around the caches: set by the
  // caller for outputs too large to stay cached, when data and strides are 64-byte aligned.
  bool stream = false;
};

struct ConstTokenTensor {
  const float* data = nullptr;
  int64_t batch_stride = 0, token_stride = 0;
};

// Work is split in grid rows: row r is image r / H, grid row r % H.
// Forward for rows [begin, end); writes the prefix tokens of an image with its first row.
using PegForwardRows = void (*)(const PegProblem& problem, ConstTokenTensor input,
                                TokenTensor output, int64_t begin, int64_t end);
// Backward for rows [begin, end): writes grad_input for those rows (prefix tokens with the first
// row) and adds their contributions to grad_taps (k * k, C) and grad_bias (C, may be null), which
// belong to the calling chunk alone.
using PegBackwardRows = void (*)(const PegProblem& problem, ConstTokenTensor grad_output,
                                 ConstTokenTensor input, TokenTensor grad_input, float* grad_taps,
                                 float* grad_bias, int64_t begin, int64_t end);

// Fourier features r_x = scale * [cos(x W_r^T) || sin(x W_r^T)] of P positions.
struct FourierProblem {
  int64_t values = 0;                    // M
  int64_t frequencies = 0;               // F / 2
  float scale = 0.0F;                    // 1 / sqrt(F)
  const float* wr_transposed = nullptr;  // (M, F/2)
};

// positions (P, M) contiguous -> features (P, F) contiguous, for positions [begin, end).
using FourierForwardRows = void (*)(const FourierProblem& problem, const float* positions,
                                    float* features, int64_t begin, int64_t end);
// From grad_features (P, F) and the forward's features (P, F): adds d loss / d W_r^T of positions
// [begin, end) to grad_wr_transposed (M, F/2, owned by the chunk; may be null) and writes
// grad_positions (P, M; may be null).
using FourierBackwardRows = void (*)(const FourierProblem& problem, const float* positions,
                                     const float* features, const float* grad_features,
                                     float* grad_wr_transposed, float* grad_positions,
                                     int64_t begin, int64_t end);

// The LFF MLP's element-wise steps on a row-major tile (rows, width), GELU exact (erf):
// pre (in: x W^T; out: + bias) and hidden = GELU(pre).
using BiasGeluForwardRows = void (*)(const float* bias, float* pre, float* hidden, int64_t rows,
                                     int64_t width);
// From the forward's pre: grad (in: dL/dhidden; out: dL/dpre), hidden = GELU(pre) written again,
// grad_bias (width) += column sums of dL/dpre.
using GeluBackwardRows = void (*)(const float* pre, float* grad, float* hidden, float* grad_bias,
                                  int64_t rows, int64_t width);
// sums (width) += column sums of values (rows, width)
using AddColumnSums = void (*)(const float* values, float* sums, int64_t rows, int64_t width);

// Rotary rotation (rotate_pairs): B images of P positioned tokens of C = heads * head_dim
// channels, each pair of a head turned by its angle. The cos and sin tables have one row per
// (table image, position), T * P rows (T = 1: one table for every image; T = B: one per image):
//   interleaved pairs (2i, 2i+1): rows of C, cos repeated for both channels of a pair and sin signed
//     (-sin for 2i, +sin for 2i+1), so out[c] = x[c] cos[c] + x[c ^ 1] sin[c];
//   half pairs (i, i + head_dim/2): rows of heads * pairs, one entry per pair, as the angles.
struct RotaryProblem {
  int64_t batch = 0, positioned = 0, heads = 0, head_dim = 0, table_batch = 1;
  bool interleaved = false;
  const float* cos = nullptr;
  const float* sin = nullptr;
};

// Work is split in table rows j = t * P + p: each covers position p of image t, or of every image
// when T = 1, so a row's table entries are read once for all the images it covers. Token tensors
// point at the first positioned token of image 0.
// output = input turned by the angles, or by minus the angles when `inverse` (the input gradient:
// the transpose of a rotation is its inverse), for rows [begin, end).
using RotaryForwardRows = void (*)(const RotaryProblem& problem, ConstTokenTensor input,
                                   TokenTensor output, bool inverse, int64_t begin, int64_t end);
// For rows [begin, end): grad_input (the inverse rotation of grad_output), and the gradients of
// the cos and sin tables in their own layout, summed over the images each row covers, into
// grad_cos and grad_sin (T * P rows, owned by the calling chunk for its rows).
using RotaryBackwardRows = void (*)(const RotaryProblem& problem, ConstTokenTensor grad_output,
                                    ConstTokenTensor input, TokenTensor grad_input,
                                    float* grad_cos, float* grad_sin, int64_t begin, int64_t end);

struct SimdKernels {
  PegForwardRows peg_forward;
  PegBackwardRows peg_backward;
  FourierForwardRows fourier_forward;
  FourierBackwardRows fourier_backward;
  BiasGeluForwardRows bias_gelu_forward;
  GeluBackwardRows gelu_backward;
  AddColumnSums add_column_sums;
  RotaryForwardRows rotary_forward;
  RotaryBackwardRows rotary_backward;
};

// Defined in the per-ISA translation units; the AVX ones exist only on x86-64.
const SimdKernels& scalar_kernels();
const SimdKernels& avx2_kernels();
const SimdKernels& avx512_kernels();

}  // namespace posenc::kernels
