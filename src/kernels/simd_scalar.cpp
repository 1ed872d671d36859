// posenc's scalar kernels: one float per "vector", portable C++ the compiler may vectorise for
// the baseline target. The fallback on CPUs without AVX2 and on other architectures; tests run it on
// every machine (ScopedSimdLevel), so it is never exercised only by chance.
#include <cmath>
#include <cstdint>

#define POSENC_SIMD_NAMESPACE scalar

namespace posenc::kernels::scalar {
namespace {

struct Vec {
  using Register = float;
  static constexpr int64_t kLanes = 1;
  static Register zero() { return 0.0F; }
  static Register broadcast(float value) { return value; }
  static Register load(const float* p) { return *p; }
  static void store(float* p, Register v) { *p = v; }
  static void stream(float* p, Register v) { *p = v; }
  static void fence() {}
  // never called: with one lane there is no partial vector
  static Register load_partial(const float* p, int64_t) { return *p; }
  static void store_partial(float* p, Register v, int64_t) { *p = v; }
  static Register add(Register a, Register b) { return a + b; }
  static Register sub(Register a, Register b) { return a - b; }
  static Register mul(Register a, Register b) { return a * b; }
  static Register fmadd(Register a, Register b, Register c) { return a * b + c; }
  static float sum(Register v) { return v; }
  static Register div(Register a, Register b) { return a / b; }
  static Register abs(Register v) { return std::fabs(v); }
  static Register select_negative(Register x, Register if_negative, Register otherwise) {
    return x < 0.0F ? if_negative : otherwise;
  }
  // never called: interleaved pairs take a loop of their own at one lane
  static Register swap_pairs(Register v) { return v; }
  static Register exp(Register x) { return std::exp(x); }
  static void sincos(Register x, Register& sine, Register& cosine) {
    sine = std::sin(x);
    cosine = std::cos(x);
  }
};

}  // namespace
}  // namespace posenc::kernels::scalar

#include "kernels/fourier_features_body.h"
#include "kernels/mlp_rows_body.h"
#include "kernels/peg_conv_body.h"
#include "kernels/rotary_rotation_body.h"

namespace posenc::kernels {

const SimdKernels& scalar_kernels() {
  static const SimdKernels kernels{
      scalar::peg_forward_rows,       scalar::peg_backward_rows,
      scalar::fourier_forward_rows,   scalar::fourier_backward_rows,
      scalar::bias_gelu_forward_rows, scalar::gelu_backward_rows,
      scalar::add_column_sums,        scalar::rotary_forward_rows,
      scalar::rotary_backward_rows};
  return kernels;
}

}  // namespace posenc::kernels
