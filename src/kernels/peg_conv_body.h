// PEG kernel bodies, written once over a SIMD vector type `Vec` and compiled once per instruction
// set. Include only from a simd_<isa>.cpp that defines POSENC_SIMD_NAMESPACE and, inside that
// namespace, `Vec` (see simd_avx512.cpp for the interface).
//
// Layout: tokens (B, N, C) with channels innermost, so one vector holds neighbouring channels of
// one token; taps are (k*k, C), so each tap's weights are contiguous across channels too. Work is
// split in grid rows (row r is image r / H, grid row r % H).
//
// Loads, not arithmetic, limit a naive depthwise convolution (one multiply-add per input load). For
// k = 1, 3, 5, 7 (compile-time K) a row goes in tiles of T output tokens whose accumulators stay
// in registers: each padded input token of a kernel row is loaded once and feeds the up to K
// outputs that read it, T + K - 1 loads for T * K multiply-adds. The padded column table makes
// this the same code for every padding mode. Other k take the generic path: border tokens through
// the tap tables one at a time, interior columns [k/2, W - k/2) in tiles of kTile tokens that
// share each tap's weight load.
#include <cstdint>
#include <cstring>

#include "kernels/simd_kernels.h"
#include "kernels/simd_loops.h"

namespace posenc::kernels::POSENC_SIMD_NAMESPACE {
namespace {

constexpr int64_t kTile = 4;

inline void copy_prefix(const PegProblem& p, const float* source, int64_t source_stride,
                        float* target, int64_t target_stride) {
  for (int64_t t = 0; t < p.prefix; ++t)
    std::memcpy(target + t * target_stride, source + t * source_stride,
                static_cast<size_t>(p.channels) * sizeof(float));
}

// Calls body(c, tail) for each channel vector: full vectors (tail 0), then a partial one.
template <typename Body>
inline void for_channel_vectors(int64_t channels, Body&& body) {
  int64_t c = 0;
  for (; c + kLanes <= channels; c += kLanes)
    body(c, int64_t{0});
  if (c < channels)
    body(c, channels - c);
}

// Splits columns [0, W) into border tokens (one at a time, through the tables) and interior tiles.
template <typename Single, typename Tile>
inline void for_column_tiles(int64_t width, int64_t half, Single&& single, Tile&& tile) {
  const int64_t interior_begin = half < width ? half : width;
  const int64_t interior_end = width - half > interior_begin ? width - half : interior_begin;
  int64_t j = 0;
  for (; j < interior_begin; ++j)
    single(j);
  for (; j + kTile <= interior_end; j += kTile)
    tile(j);
  for (; j < width; ++j)
    single(j);
}

// Calls tile(T, j0) over columns [0, W) in tiles of T = 8, then 4, 2, 1 tokens (T an
// integral_constant).
template <typename Tile>
inline void for_register_tiles(int64_t width, Tile&& tile) {
  int64_t j = 0;
  for (; j + 8 <= width; j += 8)
    tile(std::integral_constant<int, 8>{}, j);
  if (j + 4 <= width) {
    tile(std::integral_constant<int, 4>{}, j);
    j += 4;
  }
  if (j + 2 <= width) {
    tile(std::integral_constant<int, 2>{}, j);
    j += 2;
  }
  if (j < width)
    tile(std::integral_constant<int, 1>{}, j);
}

// Output tokens [j0, j0 + T) of grid row i, channels [c, c + lanes): in + bias + conv(in, taps).
// Output j reads padded column j + dj of kernel row di, so the tile reads padded columns
// [j0, j0 + T + K - 1) of each kernel row, each once.
template <int K, int T, bool Partial, bool Stream>
inline void convolve_tile(const PegProblem& p, const float* taps, const float* bias,
                          const float* grid_in, int64_t in_stride, float* target_row,
                          int64_t out_stride, int64_t i, int64_t j0, int64_t c, int64_t tail) {
  const float* centre = grid_in + (i * p.width + j0) * in_stride + c;
  const Register bias_vector = bias != nullptr ? load_vector<Partial>(bias + c, tail) : Vec::zero();
  Register acc[T];
  POSENC_UNROLL
  for (int t = 0; t < T; ++t)
    acc[t] = Vec::add(load_vector<Partial>(centre + t * in_stride, tail), bias_vector);
  const int32_t* row_source = p.rows.padded + i;  // [di]
  const int32_t* columns = p.columns.padded + j0;
  POSENC_UNROLL
  for (int di = 0; di < K; ++di) {
    if (row_source[di] < 0)
      continue;
    const float* source_row = grid_in + row_source[di] * p.width * in_stride + c;
    Register weight[K];
    POSENC_UNROLL
    for (int dj = 0; dj < K; ++dj)
      weight[dj] = load_vector<Partial>(taps + (di * K + dj) * p.channels + c, tail);
    POSENC_UNROLL
    for (int s = 0; s < T + K - 1; ++s) {
      if (columns[s] < 0)
        continue;
      const Register x = load_vector<Partial>(source_row + columns[s] * in_stride, tail);
      POSENC_UNROLL
      for (int dj = 0; dj < K; ++dj)
        if (s - dj >= 0 && s - dj < T)
          acc[s - dj] = Vec::fmadd(weight[dj], x, acc[s - dj]);
    }
  }
  POSENC_UNROLL
  for (int t = 0; t < T; ++t) {
    if constexpr (Stream && !Partial)
      Vec::stream(target_row + (j0 + t) * out_stride + c, acc[t]);
    else
      store_vector<Partial>(target_row + (j0 + t) * out_stride + c, acc[t], tail);
  }
}

// Grid row i of out = in + bias + conv(in, taps) (bias may be null), any padding mode.
template <int K, bool Stream>
void convolve_row(const PegProblem& p, const float* taps, const float* bias, const float* grid_in,
                  int64_t in_stride, float* grid_out, int64_t out_stride, int64_t i) {
  float* target_row = grid_out + i * p.width * out_stride;
  for_register_tiles(p.width, [&](auto tile, int64_t j0) {
    for_each_vector(p.channels, [&](int64_t c, int64_t tail, auto partial) {
      convolve_tile<K, decltype(tile)::value, decltype(partial)::value, Stream>(
          p, taps, bias, grid_in, in_stride, target_row, out_stride, i, j0, c, tail);
    });
  });
}

template <int K>
void convolve_row(const PegProblem& p, const float* taps, const float* bias, const float* grid_in,
                  int64_t in_stride, float* grid_out, int64_t out_stride, bool stream, int64_t i) {
  if (stream) {
    count_streamed_row();
    convolve_row<K, true>(p, taps, bias, grid_in, in_stride, grid_out, out_stride, i);
  } else
    convolve_row<K, false>(p, taps, bias, grid_in, in_stride, grid_out, out_stride, i);
}

// Adds to acc[dj][t % P] the products grad_output(j0 + t) * input(padded column j0 + t + dj) of
// one kernel row, t in [0, T): P partial sums per tap keep K * P multiply-add chains in flight.
template <int K, int T, int P, bool Partial>
inline void tap_gradient_tile(const PegProblem& p, const float* grad_row, int64_t g_stride,
                              const float* source_row, int64_t in_stride, int64_t j0, int64_t c,
                              int64_t tail, Register (&acc)[K][P]) {
  Register g[T];
  POSENC_UNROLL
  for (int t = 0; t < T; ++t)
    g[t] = load_vector<Partial>(grad_row + (j0 + t) * g_stride + c, tail);
  const int32_t* columns = p.columns.padded + j0;
  POSENC_UNROLL
  for (int s = 0; s < T + K - 1; ++s) {
    if (columns[s] < 0)
      continue;
    const Register x = load_vector<Partial>(source_row + columns[s] * in_stride + c, tail);
    POSENC_UNROLL
    for (int dj = 0; dj < K; ++dj)
      if (s - dj >= 0 && s - dj < T)
        acc[dj][(s - dj) % P] = Vec::fmadd(g[s - dj], x, acc[dj][(s - dj) % P]);
  }
}

// d taps and d bias from output row i, compile-time K: for each channel vector and kernel row,
// the K tap sums of the whole row stay in registers.
template <int K>
void tap_gradient_row_tiled(const PegProblem& p, const float* grid_grad_out, int64_t g_stride,
                            const float* grid_in, int64_t in_stride, float* grad_taps,
                            float* grad_bias, int64_t i) {
  constexpr int P = K == 1 ? 4 : (K == 3 ? 2 : 1);
  const int64_t width = p.width, channels = p.channels;
  const int32_t* row_source = p.rows.padded + i;  // [di]
  const float* grad_row = grid_grad_out + i * width * g_stride;
  for_each_vector(channels, [&](int64_t c, int64_t tail, auto partial) {
    constexpr bool kPartial = decltype(partial)::value;
    for (int di = 0; di < K; ++di) {
      if (row_source[di] < 0)
        continue;
      const float* source_row = grid_in + row_source[di] * width * in_stride;
      Register acc[K][P];
      POSENC_UNROLL
      for (int dj = 0; dj < K; ++dj)
        POSENC_UNROLL
        for (int q = 0; q < P; ++q)
          acc[dj][q] = Vec::zero();
      for_register_tiles(width, [&](auto tile, int64_t j0) {
        tap_gradient_tile<K, decltype(tile)::value, P, decltype(partial)::value>(
            p, grad_row, g_stride, source_row, in_stride, j0, c, tail, acc);
      });
      POSENC_UNROLL
      for (int dj = 0; dj < K; ++dj) {
        Register total = acc[dj][0];
        POSENC_UNROLL
        for (int q = 1; q < P; ++q)
          total = Vec::add(total, acc[dj][q]);
        float* sum = grad_taps + (di * K + dj) * channels + c;
        store_vector<kPartial>(sum, Vec::add(load_vector<kPartial>(sum, tail), total), tail);
      }
    }
    if (grad_bias != nullptr) {
      Register even = Vec::zero(), odd = Vec::zero();
      int64_t j = 0;
      for (; j + 2 <= width; j += 2) {
        even = Vec::add(even, load_vector<kPartial>(grad_row + j * g_stride + c, tail));
        odd = Vec::add(odd, load_vector<kPartial>(grad_row + (j + 1) * g_stride + c, tail));
      }
      if (j < width)
        even = Vec::add(even, load_vector<kPartial>(grad_row + j * g_stride + c, tail));
      float* sum = grad_bias + c;
      store_vector<kPartial>(sum, Vec::add(load_vector<kPartial>(sum, tail), Vec::add(even, odd)),
                             tail);
    }
  });
}

// Generic k (through the tap tables): grid row i of out = in + bias + conv(in). Tokens are visited
// in order and each token's channels in contiguous blocks, so memory is read in sequence; a
// tile's kTile x U accumulators stay in registers across the k*k taps.
void convolve_row_generic(const PegProblem& p, const float* grid_in, int64_t in_stride,
                          float* grid_out, int64_t out_stride, int64_t i) {
  const int64_t k = p.kernel, half = k / 2, width = p.width, channels = p.channels;
  const float* centre_row = grid_in + i * width * in_stride;
  float* target_row = grid_out + i * width * out_stride;
  const int32_t* row_source = p.rows.padded + i;  // [di]
  auto single = [&](int64_t j) {
    const int32_t* column_source = p.columns.padded + j;  // [dj]
    for_vector_blocks(channels, [&](auto vectors, int64_t c, int64_t tail) {
      constexpr int U = decltype(vectors)::value;
      Register acc[U];
      for (int u = 0; u < U; ++u) {
        acc[u] = load_lanes(centre_row + j * in_stride + c + u * kLanes, tail);
        if (p.bias != nullptr)
          acc[u] = Vec::add(acc[u], load_lanes(p.bias + c + u * kLanes, tail));
      }
      for (int64_t di = 0; di < k; ++di) {
        if (row_source[di] < 0)
          continue;
        const float* source_row = grid_in + row_source[di] * width * in_stride + c;
        for (int64_t dj = 0; dj < k; ++dj) {
          if (column_source[dj] < 0)
            continue;
          const float* source = source_row + column_source[dj] * in_stride;
          const float* tap = p.taps + (di * k + dj) * channels + c;
          for (int u = 0; u < U; ++u)
            acc[u] = Vec::fmadd(load_lanes(tap + u * kLanes, tail),
                                load_lanes(source + u * kLanes, tail), acc[u]);
        }
      }
      for (int u = 0; u < U; ++u)
        store_lanes(target_row + j * out_stride + c + u * kLanes, acc[u], tail);
    });
  };
  auto tile = [&](int64_t j) {
    for_channel_vectors(channels, [&](int64_t c, int64_t tail) {
      const Register bias = p.bias != nullptr ? load_lanes(p.bias + c, tail) : Vec::zero();
      Register acc[kTile];
      for (int64_t t = 0; t < kTile; ++t)
        acc[t] = Vec::add(load_lanes(centre_row + (j + t) * in_stride + c, tail), bias);
      for (int64_t di = 0; di < k; ++di) {
        if (row_source[di] < 0)
          continue;
        // interior: output column j + t reads column j + t + dj - half
        const float* source = grid_in + (row_source[di] * width + j - half) * in_stride + c;
        for (int64_t dj = 0; dj < k; ++dj) {
          const Register weight = load_lanes(p.taps + (di * k + dj) * channels + c, tail);
          for (int64_t t = 0; t < kTile; ++t)
            acc[t] = Vec::fmadd(weight, load_lanes(source + (t + dj) * in_stride, tail), acc[t]);
        }
      }
      for (int64_t t = 0; t < kTile; ++t)
        store_lanes(target_row + (j + t) * out_stride + c, acc[t], tail);
    });
  };
  for_column_tiles(width, half, single, tile);
}

// Calls body(K) with K = k as an integral_constant for the k that have register-tiled kernels;
// false for any other k.
template <typename Body>
inline bool with_compile_time_kernel(int64_t k, Body&& body) {
  switch (k) {
    case 1:
      body(std::integral_constant<int, 1>{});
      return true;
    case 3:
      body(std::integral_constant<int, 3>{});
      return true;
    case 5:
      body(std::integral_constant<int, 5>{});
      return true;
    case 7:
      body(std::integral_constant<int, 7>{});
      return true;
    default:
      return false;
  }
}

void peg_forward_rows(const PegProblem& p, ConstTokenTensor input, TokenTensor output,
                      int64_t begin, int64_t end) {
  const int64_t in_stride = input.token_stride, out_stride = output.token_stride;
  for (int64_t r = begin; r < end; ++r) {
    const int64_t image = r / p.height, i = r % p.height;
    const float* in = input.data + image * input.batch_stride;
    float* out = output.data + image * output.batch_stride;
    if (i == 0)
      copy_prefix(p, in, in_stride, out, out_stride);
    const float* grid_in = in + p.prefix * in_stride;
    float* grid_out = out + p.prefix * out_stride;
    const bool tiled = with_compile_time_kernel(p.kernel, [&](auto kernel) {
      convolve_row<decltype(kernel)::value>(p, p.taps, p.bias, grid_in, in_stride, grid_out,
                                            out_stride, output.stream, i);
    });
    if (!tiled)
      convolve_row_generic(p, grid_in, in_stride, grid_out, out_stride, i);
  }
  if (output.stream)
    Vec::fence();
}

// d input of row i: the residual passes grad_output through; every (output, tap) pair that read
// an input token sends back tap * grad_output (the transposed convolution, any padding mode).
void peg_input_gradient_row(const PegProblem& p, const float* grid_grad_out, int64_t g_stride,
                            float* grid_grad_in, int64_t gi_stride, int64_t i) {
  const int64_t k = p.kernel, half = k / 2, width = p.width, channels = p.channels;
  const int32_t* row_readers = p.rows.readers + 2 * p.rows.reader_offsets[i];
  const int64_t row_reader_count = p.rows.reader_offsets[i + 1] - p.rows.reader_offsets[i];
  const float* centre_row = grid_grad_out + i * width * g_stride;
  float* target_row = grid_grad_in + i * width * gi_stride;
  auto single = [&](int64_t j) {
    const int32_t* column_readers = p.columns.readers + 2 * p.columns.reader_offsets[j];
    const int64_t column_reader_count =
        p.columns.reader_offsets[j + 1] - p.columns.reader_offsets[j];
    for_vector_blocks(channels, [&](auto vectors, int64_t c, int64_t tail) {
      constexpr int U = decltype(vectors)::value;
      Register acc[U];
      for (int u = 0; u < U; ++u)
        acc[u] = load_lanes(centre_row + j * g_stride + c + u * kLanes, tail);
      for (int64_t a = 0; a < row_reader_count; ++a) {
        const int64_t qi = row_readers[2 * a], di = row_readers[2 * a + 1];
        const float* reader_row = grid_grad_out + qi * width * g_stride + c;
        for (int64_t b = 0; b < column_reader_count; ++b) {
          const int64_t qj = column_readers[2 * b], dj = column_readers[2 * b + 1];
          const float* reader = reader_row + qj * g_stride;
          const float* tap = p.taps + (di * k + dj) * channels + c;
          for (int u = 0; u < U; ++u)
            acc[u] = Vec::fmadd(load_lanes(tap + u * kLanes, tail),
                                load_lanes(reader + u * kLanes, tail), acc[u]);
        }
      }
      for (int u = 0; u < U; ++u)
        store_lanes(target_row + j * gi_stride + c + u * kLanes, acc[u], tail);
    });
  };
  // Interior input column j + t is read by output column j + t + half - dj at tap dj.
  auto tile = [&](int64_t j) {
    for_channel_vectors(channels, [&](int64_t c, int64_t tail) {
      Register acc[kTile];
      for (int64_t t = 0; t < kTile; ++t)
        acc[t] = load_lanes(centre_row + (j + t) * g_stride + c, tail);
      for (int64_t a = 0; a < row_reader_count; ++a) {
        const int64_t qi = row_readers[2 * a], di = row_readers[2 * a + 1];
        const float* reader_row = grid_grad_out + (qi * width + j + half) * g_stride + c;
        for (int64_t dj = 0; dj < k; ++dj) {
          const Register weight = load_lanes(p.taps + (di * k + dj) * channels + c, tail);
          for (int64_t t = 0; t < kTile; ++t)
            acc[t] = Vec::fmadd(weight, load_lanes(reader_row + (t - dj) * g_stride, tail), acc[t]);
        }
      }
      for (int64_t t = 0; t < kTile; ++t)
        store_lanes(target_row + (j + t) * gi_stride + c, acc[t], tail);
    });
  };
  for_column_tiles(width, half, single, tile);
}

// Generic k: d taps and d bias from output row i, sum over j of grad_output(i, j) * input(source
// of the tap), one tap at a time.
void tap_gradient_row_generic(const PegProblem& p, const float* grid_grad_out, int64_t g_stride,
                              const float* grid_in, int64_t in_stride, float* grad_taps,
                              float* grad_bias, int64_t i) {
  const int64_t k = p.kernel, width = p.width, channels = p.channels;
  const int32_t* row_source = p.rows.padded + i;  // [di]
  const float* grad_row = grid_grad_out + i * width * g_stride;
  for_channel_vectors(channels, [&](int64_t c, int64_t tail) {
    for (int64_t di = 0; di < k; ++di) {
      if (row_source[di] < 0)
        continue;
      const float* source_row = grid_in + row_source[di] * width * in_stride + c;
      for (int64_t dj = 0; dj < k; ++dj) {
        Register acc = Vec::zero();
        for (int64_t j = 0; j < width; ++j) {
          const int32_t sj = p.columns.padded[j + dj];
          if (sj >= 0)
            acc = Vec::fmadd(load_lanes(grad_row + j * g_stride + c, tail),
                             load_lanes(source_row + sj * in_stride, tail), acc);
        }
        float* sum = grad_taps + (di * k + dj) * channels + c;
        store_lanes(sum, Vec::add(load_lanes(sum, tail), acc), tail);
      }
    }
    if (grad_bias != nullptr) {
      Register acc = Vec::zero();
      for (int64_t j = 0; j < width; ++j)
        acc = Vec::add(acc, load_lanes(grad_row + j * g_stride + c, tail));
      store_lanes(grad_bias + c, Vec::add(load_lanes(grad_bias + c, tail), acc), tail);
    }
  });
}

// The whole backward for rows [begin, end): grad_input of those rows (prefix tokens with the
// first row of an image) and their contributions to grad_taps and grad_bias. Rows are visited
// once: the input gradient and the tap gradients of a row read the same grad_output row.
void peg_backward_rows(const PegProblem& p, ConstTokenTensor grad_output, ConstTokenTensor input,
                       TokenTensor grad_input, float* grad_taps, float* grad_bias, int64_t begin,
                       int64_t end) {
  const int64_t g_stride = grad_output.token_stride, in_stride = input.token_stride;
  const int64_t gi_stride = grad_input.token_stride;
  for (int64_t r = begin; r < end; ++r) {
    const int64_t image = r / p.height, i = r % p.height;
    const float* grad_out = grad_output.data + image * grad_output.batch_stride;
    const float* in = input.data + image * input.batch_stride;
    float* grad_in = grad_input.data + image * grad_input.batch_stride;
    if (i == 0)
      copy_prefix(p, grad_out, g_stride, grad_in, gi_stride);
    const float* grid_grad_out = grad_out + p.prefix * g_stride;
    const float* grid_in = in + p.prefix * in_stride;
    float* grid_grad_in = grad_in + p.prefix * gi_stride;
    const bool tiled = with_compile_time_kernel(p.kernel, [&](auto kernel) {
      constexpr int K = decltype(kernel)::value;
      // grad_input = grad_output + conv(grad_output, reversed taps), when that holds
      if (p.flipped_taps != nullptr)
        convolve_row<K>(p, p.flipped_taps, nullptr, grid_grad_out, g_stride, grid_grad_in,
                        gi_stride, grad_input.stream, i);
      else
        peg_input_gradient_row(p, grid_grad_out, g_stride, grid_grad_in, gi_stride, i);
      if (grad_taps != nullptr)
        tap_gradient_row_tiled<K>(p, grid_grad_out, g_stride, grid_in, in_stride, grad_taps,
                                  grad_bias, i);
    });
    if (!tiled) {
      peg_input_gradient_row(p, grid_grad_out, g_stride, grid_grad_in, gi_stride, i);
      if (grad_taps != nullptr)
        tap_gradient_row_generic(p, grid_grad_out, g_stride, grid_in, in_stride, grad_taps,
                                 grad_bias, i);
    }
  }
  if (grad_input.stream)
    Vec::fence();
}

}  // namespace
}  // namespace posenc::kernels::POSENC_SIMD_NAMESPACE
