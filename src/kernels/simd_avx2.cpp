// posenc's kernels for AVX2 + FMA: 8 floats per vector. Compiled with -mavx2 -mfma and called only
// on CPUs that have both; the same rules and `Vec` interface as simd_avx512.cpp.
#include <immintrin.h>
#include <sleef.h>

#include <cstdint>

#define POSENC_SIMD_NAMESPACE avx2

namespace posenc::kernels::avx2 {
namespace {

struct Vec {
  using Register = __m256;
  static constexpr int64_t kLanes = 8;
  static Register zero() { return _mm256_setzero_ps(); }
  static Register broadcast(float value) { return _mm256_set1_ps(value); }
  static Register load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, Register v) { _mm256_storeu_ps(p, v); }
  static void stream(float* p, Register v) { _mm256_stream_ps(p, v); }
  static void fence() { _mm_sfence(); }
  // lane l is on when l < n (the sign bit of each 32-bit lane)
  static __m256i first(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static Register load_partial(const float* p, int64_t n) {
    return _mm256_maskload_ps(p, first(n));
  }
  static void store_partial(float* p, Register v, int64_t n) {
    _mm256_maskstore_ps(p, first(n), v);
  }
  static Register add(Register a, Register b) { return _mm256_add_ps(a, b); }
  static Register sub(Register a, Register b) { return _mm256_sub_ps(a, b); }
  static Register mul(Register a, Register b) { return _mm256_mul_ps(a, b); }
  static Register fmadd(Register a, Register b, Register c) { return _mm256_fmadd_ps(a, b, c); }
  static float sum(Register v) {
    __m128 half = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    half = _mm_add_ps(half, _mm_movehl_ps(half, half));
    half = _mm_add_ss(half, _mm_movehdup_ps(half));
    return _mm_cvtss_f32(half);
  }
  static Register div(Register a, Register b) { return _mm256_div_ps(a, b); }
  static Register abs(Register v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0F), v); }
  // lane-wise x < 0 ? if_negative : otherwise
  static Register select_negative(Register x, Register if_negative, Register otherwise) {
    return _mm256_blendv_ps(otherwise, if_negative, _mm256_cmp_ps(x, zero(), _CMP_LT_OQ));
  }
  // lanes (0, 1, 2, 3, ...) -> (1, 0, 3, 2, ...): each pair of lanes swapped
  static Register swap_pairs(Register v) { return _mm256_permute_ps(v, 0xB1); }
  static Register exp(Register x) { return Sleef_expf8_u10avx2(x); }
  static void sincos(Register x, Register& sine, Register& cosine) {
    const Sleef___m256_2 both = Sleef_sincosf8_u35avx2(x);
    sine = both.x;
    cosine = both.y;
  }
};

}  // namespace
}  // namespace posenc::kernels::avx2

#include "kernels/fourier_features_body.h"
#include "kernels/mlp_rows_body.h"
#include "kernels/peg_conv_body.h"
#include "kernels/rotary_rotation_body.h"

namespace posenc::kernels {

const SimdKernels& avx2_kernels() {
  static const SimdKernels kernels{avx2::peg_forward_rows,       avx2::peg_backward_rows,
                                   avx2::fourier_forward_rows,   avx2::fourier_backward_rows,
                                   avx2::bias_gelu_forward_rows, avx2::gelu_backward_rows,
                                   avx2::add_column_sums,
                                   avx2::rotary_forward_rows,    avx2::rotary_backward_rows};
  return kernels;
}

}  // namespace posenc::kernels
