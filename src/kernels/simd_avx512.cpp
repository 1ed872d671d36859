// posenc's kernels for AVX-512 (F, BW, DQ, VL): 16 floats per vector. This file is compiled with
// -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma and only ever called after the CPU was checked
// (kernel_settings.cpp). It includes no LibTorch or standard-library code with inline functions,
// so nothing compiled for AVX-512 can leak into code paths that run on other CPUs.
//
// `Vec` is the interface every simd_<isa>.cpp provides to the kernel bodies:
//   Register, kLanes, zero, broadcast, load, store, load_partial / store_partial (the first n
//   lanes, zeros elsewhere), stream (a non-temporal store to an address aligned to a whole vector)
//   and fence (after streaming), add, sub, mul, div, abs, fmadd(a, b, c) = a * b + c,
//   select_negative(x, a, b) = x < 0 ? a : b, sum (horizontal), exp (1 ulp) and sincos (3.5 ulp)
//   from SLEEF.
#include <immintrin.h>
#include <sleef.h>

#include <cstdint>

#define POSENC_SIMD_NAMESPACE avx512

namespace posenc::kernels::avx512 {
namespace {

struct Vec {
  using Register = __m512;
  static constexpr int64_t kLanes = 16;
  static Register zero() { return _mm512_setzero_ps(); }
  static Register broadcast(float value) { return _mm512_set1_ps(value); }
  static Register load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, Register v) { _mm512_storeu_ps(p, v); }
  // non-temporal store (around the caches) to a 64-byte aligned p; fence() orders them
  static void stream(float* p, Register v) { _mm512_stream_ps(p, v); }
  static void fence() { _mm_sfence(); }
  static __mmask16 first(int64_t n) { return static_cast<__mmask16>((1U << n) - 1U); }
  static Register load_partial(const float* p, int64_t n) {
    return _mm512_maskz_loadu_ps(first(n), p);
  }
  static void store_partial(float* p, Register v, int64_t n) {
    _mm512_mask_storeu_ps(p, first(n), v);
  }
  static Register add(Register a, Register b) { return _mm512_add_ps(a, b); }
  static Register sub(Register a, Register b) { return _mm512_sub_ps(a, b); }
  static Register mul(Register a, Register b) { return _mm512_mul_ps(a, b); }
  static Register fmadd(Register a, Register b, Register c) { return _mm512_fmadd_ps(a, b, c); }
  // Not _mm512_reduce_add_ps: GCC 12 warns inside it (an uninitialised placeholder operand).
  static float sum(Register v) {
    alignas(64) float lanes[kLanes];
    _mm512_store_ps(lanes, v);
    float total = 0.0F;
    for (float lane : lanes)
      total += lane;
    return total;
  }
  static Register div(Register a, Register b) { return _mm512_div_ps(a, b); }
  static Register abs(Register v) { return _mm512_abs_ps(v); }
  // lane-wise x < 0 ? if_negative : otherwise
  static Register select_negative(Register x, Register if_negative, Register otherwise) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, zero(), _CMP_LT_OQ), otherwise, if_negative);
  }
  // lanes (0, 1, 2, 3, ...) -> (1, 0, 3, 2, ...): each pair of lanes swapped
  static Register swap_pairs(Register v) { return _mm512_permute_ps(v, 0xB1); }
  static Register exp(Register x) { return Sleef_expf16_u10avx512f(x); }
  static void sincos(Register x, Register& sine, Register& cosine) {
    const Sleef___m512_2 both = Sleef_sincosf16_u35avx512f(x);
    sine = both.x;
    cosine = both.y;
  }
};

}  // namespace
}  // namespace posenc::kernels::avx512

#include "kernels/fourier_features_body.h"
#include "kernels/mlp_rows_body.h"
#include "kernels/peg_conv_body.h"
#include "kernels/rotary_rotation_body.h"

namespace posenc::kernels {

const SimdKernels& avx512_kernels() {
  static const SimdKernels kernels{avx512::peg_forward_rows,       avx512::peg_backward_rows,
                                   avx512::fourier_forward_rows,   avx512::fourier_backward_rows,
                                   avx512::bias_gelu_forward_rows, avx512::gelu_backward_rows,
                                   avx512::add_column_sums,
                                   avx512::rotary_forward_rows,    avx512::rotary_backward_rows};
  return kernels;
}

}  // namespace posenc::kernels
