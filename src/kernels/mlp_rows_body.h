// Element-wise kernel bodies of the fused LFF MLP (fourier_mlp.cpp): the hidden layer's bias and
// GELU, forward and backward, and column sums for bias gradients, on row-major (rows, width) tiles
// that are still in cache from the matrix product before them. Written once over `Vec`; same
// inclusion rule as peg_conv_body.h.
//
// GELU(x) = x Phi(x), Phi the standard normal CDF, the exact (erf) form of torch.nn.GELU. Phi uses
// Abramowitz and Stegun 7.1.26 for erfc, the approximation (absolute error <= 1.5e-7) that
// LibTorch's vectorised erf uses too, but evaluated as erfc so that Phi of negative x is not 1
// minus a number near 1:
//   z = |x| / sqrt(2), t = 1 / (1 + p z),
//   tail = 0.5 erfc(z) = 0.5 t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) exp(-z^2) = Phi(-|x|)
//   Phi(x) = tail for x < 0, 1 - tail otherwise
// exp(-z^2) = exp(-x^2 / 2) also gives the normal density phi(x) for the gradient,
//   GELU'(x) = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi),
// so forward and backward each take one exp per value.
#include <cstdint>

#include "kernels/simd_kernels.h"
#include "kernels/simd_loops.h"

namespace posenc::kernels::POSENC_SIMD_NAMESPACE {
namespace {

struct NormalCdf {
  Register cdf;      // Phi(x)
  Register density;  // phi(x)
};

inline NormalCdf normal_cdf(Register x) {
  const Register one = Vec::broadcast(1.0F);
  const Register z = Vec::mul(Vec::abs(x), Vec::broadcast(0.70710678118654752F));
  const Register t = Vec::div(one, Vec::fmadd(z, Vec::broadcast(0.3275911F), one));
  Register polynomial = Vec::broadcast(1.061405429F);
  polynomial = Vec::fmadd(polynomial, t, Vec::broadcast(-1.453152027F));
  polynomial = Vec::fmadd(polynomial, t, Vec::broadcast(1.421413741F));
  polynomial = Vec::fmadd(polynomial, t, Vec::broadcast(-0.284496736F));
  polynomial = Vec::fmadd(polynomial, t, Vec::broadcast(0.254829592F));
  polynomial = Vec::mul(polynomial, t);
  const Register gaussian = Vec::exp(Vec::sub(Vec::zero(), Vec::mul(z, z)));  // exp(-x^2 / 2)
  const Register tail = Vec::mul(Vec::mul(Vec::broadcast(0.5F), polynomial), gaussian);
  return {Vec::select_negative(x, tail, Vec::sub(one, tail)),
          Vec::mul(gaussian, Vec::broadcast(0.39894228040143268F))};
}

// pre (rows, width): in, x W^T; out, x W^T + bias. hidden (rows, width) = GELU(pre).
void bias_gelu_forward_rows(const float* bias, float* pre, float* hidden, int64_t rows,
                            int64_t width) {
  for (int64_t row = 0; row < rows; ++row) {
    float* pre_row = pre + row * width;
    float* hidden_row = hidden + row * width;
    for_each_vector(width, [&](int64_t c, int64_t tail, auto partial) {
      constexpr bool kPartial = decltype(partial)::value;
      const Register x =
          Vec::add(load_vector<kPartial>(pre_row + c, tail), load_vector<kPartial>(bias + c, tail));
      store_vector<kPartial>(pre_row + c, x, tail);
      store_vector<kPartial>(hidden_row + c, Vec::mul(x, normal_cdf(x).cdf), tail);
    });
  }
}

// From pre (rows, width), the forward's GELU input: grad (in, dL/dGELU(pre); out, dL/dpre),
// hidden (out, GELU(pre), for the next layer's weight gradient), and grad_bias (width) += the
// column sums of dL/dpre.
void gelu_backward_rows(const float* pre, float* grad, float* hidden, float* grad_bias,
                        int64_t rows, int64_t width) {
  for (int64_t row = 0; row < rows; ++row) {
    const float* pre_row = pre + row * width;
    float* grad_row = grad + row * width;
    float* hidden_row = hidden + row * width;
    for_each_vector(width, [&](int64_t c, int64_t tail, auto partial) {
      constexpr bool kPartial = decltype(partial)::value;
      const Register x = load_vector<kPartial>(pre_row + c, tail);
      const NormalCdf normal = normal_cdf(x);
      store_vector<kPartial>(hidden_row + c, Vec::mul(x, normal.cdf), tail);
      const Register slope = Vec::fmadd(x, normal.density, normal.cdf);
      const Register grad_pre = Vec::mul(load_vector<kPartial>(grad_row + c, tail), slope);
      store_vector<kPartial>(grad_row + c, grad_pre, tail);
      store_vector<kPartial>(grad_bias + c,
                             Vec::add(load_vector<kPartial>(grad_bias + c, tail), grad_pre), tail);
    });
  }
}

// sums (width) += the column sums of values (rows, width)
void add_column_sums(const float* values, float* sums, int64_t rows, int64_t width) {
  for_vector_blocks(width, [&](auto vectors, int64_t c, int64_t tail) {
    constexpr int U = decltype(vectors)::value;
    Register total[U];
    POSENC_UNROLL
    for (int u = 0; u < U; ++u)
      total[u] = load_lanes(sums + c + u * kLanes, tail);
    for (int64_t row = 0; row < rows; ++row) {
      POSENC_UNROLL
      for (int u = 0; u < U; ++u)
        total[u] = Vec::add(total[u], load_lanes(values + row * width + c + u * kLanes, tail));
    }
    POSENC_UNROLL
    for (int u = 0; u < U; ++u)
      store_lanes(sums + c + u * kLanes, total[u], tail);
  });
}

}  // namespace
}  // namespace posenc::kernels::POSENC_SIMD_NAMESPACE
