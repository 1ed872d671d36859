// PEG kernel bodies, written once over a SIMD vector type `Vec` and compiled once per instruction
// set. Include only from a simd_<isa>.cpp that defines POSENC_SIMD_NAMESPACE and, inside that
// namespace, `Vec` (see simd_avx512.cpp for the interface).
//
// Layout: tokens (B, N, C) with channels innermost, so one vector holds neighbouring channels of
// one token; taps are (k*k, C), so each tap's weights are contiguous across channels too. Work is
// split in grid rows (row r is image r / H, grid row r % H).
//
// Loads, not arithmetic, limit a depthwise convolution (one multiply-add per input load), so the
// interior of each row goes in tiles of kTile tokens that share each tap's weight load. In the
// interior columns [k/2, W - k/2) no padding is involved whatever the mode, so tiles index
// neighbours directly; border tokens go through the per-axis tap tables (any padding mode).
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

// Tokens are visited in order and each token's channels in contiguous blocks, so memory is read
// in sequence; a tile's kTile x U accumulators stay in registers across the k*k taps.
void peg_forward_rows(const PegProblem& p, ConstTokenTensor input, TokenTensor output,
                      int64_t begin, int64_t end) {
  const int64_t k = p.kernel, half = k / 2, width = p.width, channels = p.channels;
  const int64_t in_stride = input.token_stride, out_stride = output.token_stride;
  for (int64_t r = begin; r < end; ++r) {
    const int64_t image = r / p.height, i = r % p.height;
    const float* in = input.data + image * input.batch_stride;
    float* out = output.data + image * output.batch_stride;
    if (i == 0)
      copy_prefix(p, in, in_stride, out, out_stride);
    const float* grid_in = in + p.prefix * in_stride;
    const float* centre_row = grid_in + i * width * in_stride;
    float* target_row = out + (p.prefix + i * width) * out_stride;
    const int32_t* row_source = p.rows.source + i * k;

    auto single = [&](int64_t j) {
      const int32_t* column_source = p.columns.source + j * k;
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

// d taps and d bias from output row i: sum over j of grad_output(i, j) * input(source of tap).
// With K = k known at compile time the k column taps of a source row accumulate in registers and
// share the load of grad_output; K = 0 handles any k with one tap at a time.
template <int K>
void peg_tap_gradient_row(const PegProblem& p, const float* grid_grad_out, int64_t g_stride,
                          const float* grid_in, int64_t in_stride, float* grad_taps,
                          float* grad_bias, int64_t i) {
  const int64_t k = K > 0 ? K : p.kernel, width = p.width, channels = p.channels;
  const int32_t* row_source = p.rows.source + i * k;
  const float* grad_row = grid_grad_out + i * width * g_stride;
  for_channel_vectors(channels, [&](int64_t c, int64_t tail) {
    for (int64_t di = 0; di < k; ++di) {
      if (row_source[di] < 0)
        continue;
      const float* source_row = grid_in + row_source[di] * width * in_stride + c;
      if constexpr (K > 0) {
        Register acc[K];
        for (int dj = 0; dj < K; ++dj)
          acc[dj] = Vec::zero();
        for (int64_t j = 0; j < width; ++j) {
          const Register g = load_lanes(grad_row + j * g_stride + c, tail);
          const int32_t* column_source = p.columns.source + j * K;
          for (int dj = 0; dj < K; ++dj)
            if (column_source[dj] >= 0)
              acc[dj] = Vec::fmadd(g, load_lanes(source_row + column_source[dj] * in_stride, tail),
                                   acc[dj]);
        }
        for (int dj = 0; dj < K; ++dj) {
          float* sum = grad_taps + (di * K + dj) * channels + c;
          store_lanes(sum, Vec::add(load_lanes(sum, tail), acc[dj]), tail);
        }
      } else {
        for (int64_t dj = 0; dj < k; ++dj) {
          Register acc = Vec::zero();
          for (int64_t j = 0; j < width; ++j) {
            const int32_t sj = p.columns.source[j * k + dj];
            if (sj >= 0)
              acc = Vec::fmadd(load_lanes(grad_row + j * g_stride + c, tail),
                               load_lanes(source_row + sj * in_stride, tail), acc);
          }
          float* sum = grad_taps + (di * k + dj) * channels + c;
          store_lanes(sum, Vec::add(load_lanes(sum, tail), acc), tail);
        }
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
// first row of an image) and their contributions to grad_taps and grad_bias.
void peg_backward_rows(const PegProblem& p, ConstTokenTensor grad_output, ConstTokenTensor input,
                       TokenTensor grad_input, float* grad_taps, float* grad_bias, int64_t begin,
                       int64_t end) {
  auto tap_gradient_row = &peg_tap_gradient_row<0>;
  switch (p.kernel) {
    case 1:
      tap_gradient_row = &peg_tap_gradient_row<1>;
      break;
    case 3:
      tap_gradient_row = &peg_tap_gradient_row<3>;
      break;
    case 5:
      tap_gradient_row = &peg_tap_gradient_row<5>;
      break;
    case 7:
      tap_gradient_row = &peg_tap_gradient_row<7>;
      break;
    default:
      break;
  }
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
    peg_input_gradient_row(p, grid_grad_out, g_stride, grad_in + p.prefix * gi_stride, gi_stride,
                           i);
    if (grad_taps != nullptr)
      tap_gradient_row(p, grid_grad_out, g_stride, in + p.prefix * in_stride, in_stride, grad_taps,
                       grad_bias, i);
  }
}

}  // namespace
}  // namespace posenc::kernels::POSENC_SIMD_NAMESPACE
