// Fourier-feature kernel bodies (LFF step 2), written once over `Vec`; same inclusion rule as
// peg_conv_body.h. The vector loop runs over the F/2 frequencies; positions are few (M values).
#include <cstdint>

#include "kernels/simd_kernels.h"
#include "kernels/simd_loops.h"

namespace posenc::kernels::POSENC_SIMD_NAMESPACE {
namespace {

// features[p] = scale * [cos(x_p W_r^T) || sin(x_p W_r^T)]
void fourier_forward_rows(const FourierProblem& p, const float* positions, float* features,
                          int64_t begin, int64_t end) {
  const int64_t values = p.values, half = p.frequencies;
  const Register scale = Vec::broadcast(p.scale);
  for (int64_t row = begin; row < end; ++row) {
    const float* x = positions + row * values;
    float* out = features + row * 2 * half;
    for_vector_blocks(half, [&](auto vectors, int64_t f, int64_t tail) {
      constexpr int U = decltype(vectors)::value;
      Register projected[U];
      for (int u = 0; u < U; ++u)
        projected[u] = Vec::zero();
      for (int64_t m = 0; m < values; ++m) {
        const Register coordinate = Vec::broadcast(x[m]);
        for (int u = 0; u < U; ++u)
          projected[u] =
              Vec::fmadd(coordinate, load_lanes(p.wr_transposed + m * half + f + u * kLanes, tail),
                         projected[u]);
      }
      for (int u = 0; u < U; ++u) {
        Register sine, cosine;
        Vec::sincos(projected[u], sine, cosine);
        store_lanes(out + f + u * kLanes, Vec::mul(cosine, scale), tail);
        store_lanes(out + half + f + u * kLanes, Vec::mul(sine, scale), tail);
      }
    });
  }
}

// With z = x W_r^T, the forward's own outputs give the derivative without new sin/cos:
//   d/dz (scale cos z) = -(scale sin z),  d/dz (scale sin z) = scale cos z
// so dL/dz = cos_feature * grad_sin - sin_feature * grad_cos; then
//   dL/dW_r^T[m] += dL/dz * x[m],  dL/dx[m] = sum_f dL/dz[f] * W_r^T[m][f].
void fourier_backward_rows(const FourierProblem& p, const float* positions, const float* features,
                           const float* grad_features, float* grad_wr_transposed,
                           float* grad_positions, int64_t begin, int64_t end) {
  const int64_t values = p.values, half = p.frequencies;
  constexpr int64_t kMaxValues = 16;  // positions with more values skip the register path below
  for (int64_t row = begin; row < end; ++row) {
    const float* x = positions + row * values;
    const float* cos_feature = features + row * 2 * half;
    const float* sin_feature = cos_feature + half;
    const float* grad_cos = grad_features + row * 2 * half;
    const float* grad_sin = grad_cos + half;
    Register position_grad[kMaxValues];
    const bool registers_hold_values = values <= kMaxValues;
    if (grad_positions != nullptr) {
      for (int64_t m = 0; m < values; ++m)
        grad_positions[row * values + m] = 0.0F;
      for (int64_t m = 0; registers_hold_values && m < values; ++m)
        position_grad[m] = Vec::zero();
    }
    for_vector_blocks(half, [&](auto vectors, int64_t block, int64_t tail) {
      constexpr int U = decltype(vectors)::value;
      for (int u = 0; u < U; ++u) {
        const int64_t f = block + u * kLanes;
        const Register grad_z =
            Vec::sub(Vec::mul(load_lanes(cos_feature + f, tail), load_lanes(grad_sin + f, tail)),
                     Vec::mul(load_lanes(sin_feature + f, tail), load_lanes(grad_cos + f, tail)));
        for (int64_t m = 0; m < values; ++m) {
          if (grad_wr_transposed != nullptr) {
            float* sum = grad_wr_transposed + m * half + f;
            store_lanes(sum, Vec::fmadd(grad_z, Vec::broadcast(x[m]), load_lanes(sum, tail)), tail);
          }
          if (grad_positions != nullptr) {
            const Register product =
                Vec::mul(grad_z, load_lanes(p.wr_transposed + m * half + f, tail));
            if (registers_hold_values)
              position_grad[m] = Vec::add(position_grad[m], product);
            else
              grad_positions[row * values + m] += Vec::sum(product);
          }
        }
      }
    });
    if (grad_positions != nullptr && registers_hold_values)
      for (int64_t m = 0; m < values; ++m)
        grad_positions[row * values + m] = Vec::sum(position_grad[m]);
  }
}

}  // namespace
}  // namespace posenc::kernels::POSENC_SIMD_NAMESPACE
