// PEG kernel bodies, written once over a SIMD vector type `Vec` and compiled once per instruction
// set. Include only from a simd_<isa>.cpp that defines POSENC_SIMD_NAMESPACE and, inside that
// namespace, `Vec` (see simd_avx512.cpp for the interface).
//
// Layout: tokens (B, N, C) with channels innermost; the channel loop is the vector loop, in blocks
// of kBlock vectors (accumulators stay in registers across the k*k taps), then single vectors, then
// a partial vector (simd_loops.h). Taps are (k*k, C) so every tap's weights are contiguous across channels.
#include <cstdint>
#include <cstring>

#include "kernels/simd_kernels.h"
#include "kernels/simd_loops.h"

namespace posenc::kernels::POSENC_SIMD_NAMESPACE {
namespace {

inline void copy_prefix(const PegProblem& p, const float* source, int64_t source_stride,
                        float* target, int64_t target_stride) {
  for (int64_t t = 0; t < p.prefix; ++t)
    std::memcpy(target + t * target_stride, source + t * source_stride,
                static_cast<size_t>(p.channels) * sizeof(float));
}

void peg_forward_rows(const PegProblem& p, ConstTokenTensor input, TokenTensor output,
                      int64_t begin, int64_t end) {
  const int64_t k = p.kernel, width = p.width, channels = p.channels;
  for (int64_t r = begin; r < end; ++r) {
    const int64_t image = r / p.height, i = r % p.height;
    const float* in = input.data + image * input.batch_stride;
    float* out = output.data + image * output.batch_stride;
    if (i == 0)
      copy_prefix(p, in, input.token_stride, out, output.token_stride);
    const float* grid_in = in + p.prefix * input.token_stride;
    float* grid_out = out + p.prefix * output.token_stride;
    const int32_t* row_source = p.rows.source + i * k;
    for (int64_t j = 0; j < width; ++j) {
      const int32_t* column_source = p.columns.source + j * k;
      const float* centre = grid_in + (i * width + j) * input.token_stride;
      float* target = grid_out + (i * width + j) * output.token_stride;
      for_vector_blocks(channels, [&](auto vectors, int64_t c, int64_t tail) {
        constexpr int U = decltype(vectors)::value;
        Register acc[U];
        for (int u = 0; u < U; ++u) {
          acc[u] = load_lanes(centre + c + u * kLanes, tail);
          if (p.bias != nullptr)
            acc[u] = Vec::add(acc[u], load_lanes(p.bias + c + u * kLanes, tail));
        }
        for (int64_t di = 0; di < k; ++di) {
          if (row_source[di] < 0)
            continue;
          const float* source_row = grid_in + row_source[di] * width * input.token_stride;
          for (int64_t dj = 0; dj < k; ++dj) {
            if (column_source[dj] < 0)
              continue;
            const float* source = source_row + column_source[dj] * input.token_stride + c;
            const float* tap = p.taps + (di * k + dj) * channels + c;
            for (int u = 0; u < U; ++u)
              acc[u] = Vec::fmadd(load_lanes(tap + u * kLanes, tail),
                                  load_lanes(source + u * kLanes, tail), acc[u]);
          }
        }
        for (int u = 0; u < U; ++u)
          store_lanes(target + c + u * kLanes, acc[u], tail);
      });
    }
  }
}

// d input: the residual passes grad_output through; every (output, tap) pair that read an input
// token sends back tap * grad_output (the transposed convolution, any padding mode).
// d taps, d bias: sums over this chunk's output tokens, accumulated in registers along a row.
void peg_backward_rows(const PegProblem& p, ConstTokenTensor grad_output, ConstTokenTensor input,
                       TokenTensor grad_input, float* grad_taps, float* grad_bias, int64_t begin,
                       int64_t end) {
  const int64_t k = p.kernel, width = p.width, channels = p.channels;
  for (int64_t r = begin; r < end; ++r) {
    const int64_t image = r / p.height, i = r % p.height;
    const float* grad_out = grad_output.data + image * grad_output.batch_stride;
    const float* in = input.data + image * input.batch_stride;
    float* grad_in = grad_input.data + image * grad_input.batch_stride;
    if (i == 0)
      copy_prefix(p, grad_out, grad_output.token_stride, grad_in, grad_input.token_stride);
    const float* grid_grad_out = grad_out + p.prefix * grad_output.token_stride;
    const float* grid_in = in + p.prefix * input.token_stride;
    float* grid_grad_in = grad_in + p.prefix * grad_input.token_stride;

    // grad_input of grid row i
    const int32_t* row_readers = p.rows.readers + 2 * p.rows.reader_offsets[i];
    const int64_t row_reader_count = p.rows.reader_offsets[i + 1] - p.rows.reader_offsets[i];
    for (int64_t j = 0; j < width; ++j) {
      const int32_t* column_readers = p.columns.readers + 2 * p.columns.reader_offsets[j];
      const int64_t column_reader_count =
          p.columns.reader_offsets[j + 1] - p.columns.reader_offsets[j];
      const float* centre = grid_grad_out + (i * width + j) * grad_output.token_stride;
      float* target = grid_grad_in + (i * width + j) * grad_input.token_stride;
      for_vector_blocks(channels, [&](auto vectors, int64_t c, int64_t tail) {
        constexpr int U = decltype(vectors)::value;
        Register acc[U];
        for (int u = 0; u < U; ++u)
          acc[u] = load_lanes(centre + c + u * kLanes, tail);
        for (int64_t a = 0; a < row_reader_count; ++a) {
          const int64_t qi = row_readers[2 * a], di = row_readers[2 * a + 1];
          const float* reader_row = grid_grad_out + qi * width * grad_output.token_stride;
          for (int64_t b = 0; b < column_reader_count; ++b) {
            const int64_t qj = column_readers[2 * b], dj = column_readers[2 * b + 1];
            const float* reader = reader_row + qj * grad_output.token_stride + c;
            const float* tap = p.taps + (di * k + dj) * channels + c;
            for (int u = 0; u < U; ++u)
              acc[u] = Vec::fmadd(load_lanes(tap + u * kLanes, tail),
                                  load_lanes(reader + u * kLanes, tail), acc[u]);
          }
        }
        for (int u = 0; u < U; ++u)
          store_lanes(target + c + u * kLanes, acc[u], tail);
      });
    }

    // grad_taps and grad_bias from output row i
    const int32_t* row_source = p.rows.source + i * k;
    const float* grad_row = grid_grad_out + i * width * grad_output.token_stride;
    for_vector_blocks(channels, [&](auto vectors, int64_t c, int64_t tail) {
        constexpr int U = decltype(vectors)::value;
      for (int64_t di = 0; di < k; ++di) {
        if (row_source[di] < 0)
          continue;
        const float* source_row = grid_in + row_source[di] * width * input.token_stride + c;
        for (int64_t dj = 0; dj < k; ++dj) {
          Register acc[U];
          for (int u = 0; u < U; ++u)
            acc[u] = Vec::zero();
          for (int64_t j = 0; j < width; ++j) {
            const int32_t sj = p.columns.source[j * k + dj];
            if (sj < 0)
              continue;
            const float* g = grad_row + j * grad_output.token_stride + c;
            const float* x = source_row + sj * input.token_stride;
            for (int u = 0; u < U; ++u)
              acc[u] = Vec::fmadd(load_lanes(g + u * kLanes, tail),
                                  load_lanes(x + u * kLanes, tail), acc[u]);
          }
          float* sum = grad_taps + (di * k + dj) * channels + c;
          for (int u = 0; u < U; ++u)
            store_lanes(sum + u * kLanes, Vec::add(load_lanes(sum + u * kLanes, tail), acc[u]),
                        tail);
        }
      }
      if (grad_bias != nullptr) {
        Register acc[U];
        for (int u = 0; u < U; ++u)
          acc[u] = Vec::zero();
        for (int64_t j = 0; j < width; ++j)
          for (int u = 0; u < U; ++u)
            acc[u] = Vec::add(acc[u], load_lanes(grad_row + j * grad_output.token_stride + c +
                                                     u * kLanes,
                                                 tail));
        for (int u = 0; u < U; ++u)
          store_lanes(grad_bias + c + u * kLanes,
                      Vec::add(load_lanes(grad_bias + c + u * kLanes, tail), acc[u]), tail);
      }
    });
  }
}

}  // namespace
}  // namespace posenc::kernels::POSENC_SIMD_NAMESPACE
