// Rotary rotation kernel bodies (rotate_pairs), written once over `Vec`; same inclusion rule as
// peg_conv_body.h. The vector loop runs over a token's channels: interleaved pairs turn whole
// vectors with their lanes swapped pairwise (Vec::swap_pairs), half pairs turn a vector of first
// halves with the vector of second halves at the same offset.
#include <cstdint>

#include "kernels/simd_kernels.h"
#include "kernels/simd_loops.h"

namespace posenc::kernels::POSENC_SIMD_NAMESPACE {
namespace {

// The images a table row covers: every image for a shared table, else its own.
struct RowImages {
  int64_t position, first, last;
};
inline RowImages row_images(const RotaryProblem& p, int64_t row) {
  const int64_t table_image = row / p.positioned;
  const int64_t position = row % p.positioned;
  if (p.table_batch == 1)
    return {position, 0, p.batch};
  return {position, table_image, table_image + 1};
}

inline const float* token_of(ConstTokenTensor t, int64_t image, int64_t position) {
  return t.data + image * t.batch_stride + position * t.token_stride;
}
inline float* token_of(TokenTensor t, int64_t image, int64_t position) {
  return t.data + image * t.batch_stride + position * t.token_stride;
}

// out[c] = x[c] cos[c] + sign * x[c ^ 1] sin[c] over one interleaved token of `channels`
inline void turn_interleaved(const float* x, const float* cos, const float* sin, float sign,
                             float* out, int64_t channels) {
  if constexpr (kLanes == 1) {
    for (int64_t c = 0; c < channels; c += 2) {
      const float a = x[c], b = x[c + 1];
      out[c] = a * cos[c] + sign * b * sin[c];
      out[c + 1] = b * cos[c + 1] + sign * a * sin[c + 1];
    }
  } else {
    const Register signed_one = Vec::broadcast(sign);
    // channels is even and every vector starts at an even channel: no pair straddles two vectors
    for_each_vector(channels, [&](int64_t c, int64_t tail, auto partial) {
      constexpr bool kPartial = decltype(partial)::value;
      const Register v = load_vector<kPartial>(x + c, tail);
      const Register s = Vec::mul(signed_one, load_vector<kPartial>(sin + c, tail));
      const Register turned =
          Vec::fmadd(v, load_vector<kPartial>(cos + c, tail), Vec::mul(Vec::swap_pairs(v), s));
      store_vector<kPartial>(out + c, turned, tail);
    });
  }
}

// each head's (a, b) = (x[i], x[i + pairs]) -> (a cos - sign b sin, b cos + sign a sin)
inline void turn_halves(const float* x, const float* cos, const float* sin, float sign,
                        float* out, int64_t heads, int64_t pairs) {
  const Register signed_one = Vec::broadcast(sign);
  for (int64_t h = 0; h < heads; ++h) {
    const float* a_in = x + h * 2 * pairs;
    const float* b_in = a_in + pairs;
    float* a_out = out + h * 2 * pairs;
    float* b_out = a_out + pairs;
    const float* head_cos = cos + h * pairs;
    const float* head_sin = sin + h * pairs;
    for_each_vector(pairs, [&](int64_t i, int64_t tail, auto partial) {
      constexpr bool kPartial = decltype(partial)::value;
      const Register a = load_vector<kPartial>(a_in + i, tail);
      const Register b = load_vector<kPartial>(b_in + i, tail);
      const Register c = load_vector<kPartial>(head_cos + i, tail);
      const Register s = Vec::mul(signed_one, load_vector<kPartial>(head_sin + i, tail));
      store_vector<kPartial>(a_out + i, Vec::sub(Vec::mul(a, c), Vec::mul(b, s)), tail);
      store_vector<kPartial>(b_out + i, Vec::fmadd(a, s, Vec::mul(b, c)), tail);
    });
  }
}

void rotary_forward_rows(const RotaryProblem& p, ConstTokenTensor input, TokenTensor output,
                         bool inverse, int64_t begin, int64_t end) {
  const int64_t channels = p.heads * p.head_dim, pairs = p.head_dim / 2;
  const int64_t table_width = p.interleaved ? channels : p.heads * pairs;
  const float sign = inverse ? -1.0F : 1.0F;
  for (int64_t row = begin; row < end; ++row) {
    const RowImages images = row_images(p, row);
    const float* cos = p.cos + row * table_width;
    const float* sin = p.sin + row * table_width;
    for (int64_t image = images.first; image < images.last; ++image) {
      const float* x = token_of(input, image, images.position);
      float* out = token_of(output, image, images.position);
      if (p.interleaved)
        turn_interleaved(x, cos, sin, sign, out, channels);
      else
        turn_halves(x, cos, sin, sign, out, p.heads, pairs);
    }
  }
}

// grad_x = the inverse rotation of g: g[c] cos[c] - g[c ^ 1] sin[c];
// grad_cos[c] += g[c] x[c], grad_sin[c] += g[c] x[c ^ 1]
inline void interleaved_gradients(const float* g, const float* x, const float* cos,
                                  const float* sin, float* grad_x, float* grad_cos,
                                  float* grad_sin, int64_t channels) {
  if constexpr (kLanes == 1) {
    for (int64_t c = 0; c < channels; c += 2) {
      const float ga = g[c], gb = g[c + 1], a = x[c], b = x[c + 1];
      grad_x[c] = ga * cos[c] - gb * sin[c];
      grad_x[c + 1] = gb * cos[c + 1] - ga * sin[c + 1];
      grad_cos[c] += ga * a;
      grad_cos[c + 1] += gb * b;
      grad_sin[c] += ga * b;
      grad_sin[c + 1] += gb * a;
    }
  } else {
    for_each_vector(channels, [&](int64_t c, int64_t tail, auto partial) {
      constexpr bool kPartial = decltype(partial)::value;
      const Register gv = load_vector<kPartial>(g + c, tail);
      const Register xv = load_vector<kPartial>(x + c, tail);
      // the partner's sine is minus this channel's: g[c] cos[c] + g[c^1] sin[c^1]
      const Register s = load_vector<kPartial>(sin + c, tail);
      store_vector<kPartial>(grad_x + c,
                             Vec::sub(Vec::mul(gv, load_vector<kPartial>(cos + c, tail)),
                                      Vec::mul(Vec::swap_pairs(gv), s)),
                             tail);
      store_vector<kPartial>(grad_cos + c,
                             Vec::fmadd(gv, xv, load_vector<kPartial>(grad_cos + c, tail)), tail);
      store_vector<kPartial>(
          grad_sin + c,
          Vec::fmadd(gv, Vec::swap_pairs(xv), load_vector<kPartial>(grad_sin + c, tail)), tail);
    });
  }
}

// per head, (g_a, g_b) -> (g_a cos + g_b sin, g_b cos - g_a sin);
// grad_cos += g_a a + g_b b, grad_sin += g_b a - g_a b
inline void half_gradients(const float* g, const float* x, const float* cos, const float* sin,
                           float* grad_x, float* grad_cos, float* grad_sin, int64_t heads,
                           int64_t pairs) {
  for (int64_t h = 0; h < heads; ++h) {
    const int64_t first = h * 2 * pairs, second = first + pairs, entry = h * pairs;
    for_each_vector(pairs, [&](int64_t i, int64_t tail, auto partial) {
      constexpr bool kPartial = decltype(partial)::value;
      const Register ga = load_vector<kPartial>(g + first + i, tail);
      const Register gb = load_vector<kPartial>(g + second + i, tail);
      const Register a = load_vector<kPartial>(x + first + i, tail);
      const Register b = load_vector<kPartial>(x + second + i, tail);
      const Register c = load_vector<kPartial>(cos + entry + i, tail);
      const Register s = load_vector<kPartial>(sin + entry + i, tail);
      store_vector<kPartial>(grad_x + first + i, Vec::fmadd(ga, c, Vec::mul(gb, s)), tail);
      store_vector<kPartial>(grad_x + second + i, Vec::sub(Vec::mul(gb, c), Vec::mul(ga, s)),
                             tail);
      float* gc = grad_cos + entry + i;
      float* gs = grad_sin + entry + i;
      store_vector<kPartial>(
          gc, Vec::fmadd(ga, a, Vec::fmadd(gb, b, load_vector<kPartial>(gc, tail))), tail);
      store_vector<kPartial>(
          gs, Vec::sub(Vec::fmadd(gb, a, load_vector<kPartial>(gs, tail)), Vec::mul(ga, b)),
          tail);
    });
  }
}

void rotary_backward_rows(const RotaryProblem& p, ConstTokenTensor grad_output,
                          ConstTokenTensor input, TokenTensor grad_input, float* grad_cos,
                          float* grad_sin, int64_t begin, int64_t end) {
  const int64_t channels = p.heads * p.head_dim, pairs = p.head_dim / 2;
  const int64_t table_width = p.interleaved ? channels : p.heads * pairs;
  for (int64_t row = begin; row < end; ++row) {
    const RowImages images = row_images(p, row);
    const float* cos = p.cos + row * table_width;
    const float* sin = p.sin + row * table_width;
    float* row_grad_cos = grad_cos + row * table_width;
    float* row_grad_sin = grad_sin + row * table_width;
    for (int64_t e = 0; e < table_width; ++e)
      row_grad_cos[e] = row_grad_sin[e] = 0.0F;
    for (int64_t image = images.first; image < images.last; ++image) {
      const float* g = token_of(grad_output, image, images.position);
      const float* x = token_of(input, image, images.position);
      float* grad_x = token_of(grad_input, image, images.position);
      if (p.interleaved)
        interleaved_gradients(g, x, cos, sin, grad_x, row_grad_cos, row_grad_sin, channels);
      else
        half_gradients(g, x, cos, sin, grad_x, row_grad_cos, row_grad_sin, p.heads, pairs);
    }
  }
}

}  // namespace
}  // namespace posenc::kernels::POSENC_SIMD_NAMESPACE
