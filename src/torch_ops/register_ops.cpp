// posenc's kernels as PyTorch operators, for Python:
//   torch.ops.load_library("build/libposenc_torch_ops.so")
//   out = torch.ops.posenc.peg_conv(tokens, weight, bias, height, width, prefix_tokens, "zeros")
//   features = torch.ops.posenc.fourier_features(positions, wr)
//   encoding = torch.ops.posenc.fourier_mlp(positions, wr, w1, b1, w2, b2)
//   q = torch.ops.posenc.rotate_pairs(q, angles, prefix_tokens, "interleaved")
// Each is registered as a composite kernel that calls posenc's autograd function, so PyTorch's
// autograd differentiates it through posenc's own backward (the fused kernel on CPU in float32,
// the LibTorch reference otherwise).
#include <torch/library.h>
#include <torch/torch.h>

#include "posenc/kernels/fourier_features.h"
#include "posenc/kernels/fourier_mlp.h"
#include "posenc/kernels/peg_conv.h"
#include "posenc/kernels/rotary_rotation.h"

namespace posenc {
namespace {

// tokens: (B, prefix_tokens + height * width, C), weight: (C, 1, k, k), bias: (C) or None
at::Tensor peg_conv_op(const at::Tensor& tokens, const at::Tensor& weight,
                       const c10::optional<at::Tensor>& bias, int64_t height, int64_t width,
                       int64_t prefix_tokens, c10::string_view padding) {
  const TokenGrid grid{height, width, prefix_tokens};
  grid.validate();
  return peg_conv(tokens, weight, bias.has_value() ? *bias : at::Tensor(), grid,
                  parse_peg_padding(std::string(padding)));
}

// positions: (..., M), wr: (F/2, M) -> (..., F)
at::Tensor fourier_features_op(const at::Tensor& positions, const at::Tensor& wr) {
  return fourier_features(positions, wr);
}

// The whole LFF encoder, GELU(r_x W_1^T + b_1) W_2^T + b_2 with r_x the Fourier features:
// positions (..., M), wr (F/2, M), w1 (H, F), b1 (H), w2 (O, H), b2 (O) -> (..., O)
at::Tensor fourier_mlp_op(const at::Tensor& positions, const at::Tensor& wr, const at::Tensor& w1,
                          const at::Tensor& b1, const at::Tensor& w2, const at::Tensor& b2) {
  return fourier_mlp(positions, wr, w1, b1, w2, b2);
}

// The rotation of rotary encodings: tokens (B, N, C), angles (1 or B, N - prefix_tokens, heads,
// C / heads / 2) in radians -> (B, N, C); pairs "interleaved" (2i, 2i+1) or "half" (i, i + d/2)
at::Tensor rotate_pairs_op(const at::Tensor& tokens, const at::Tensor& angles,
                           int64_t prefix_tokens, c10::string_view pairs) {
  return rotate_pairs(tokens, angles, prefix_tokens, parse_rotary_pairs(std::string(pairs)));
}

}  // namespace
}  // namespace posenc

TORCH_LIBRARY(posenc, m) {
  m.def(
      "peg_conv(Tensor tokens, Tensor weight, Tensor? bias, int height, int width, "
      "int prefix_tokens=0, str padding=\"zeros\") -> Tensor",
      &posenc::peg_conv_op);
  m.def("fourier_features(Tensor positions, Tensor wr) -> Tensor", &posenc::fourier_features_op);
  m.def(
      "fourier_mlp(Tensor positions, Tensor wr, Tensor w1, Tensor b1, Tensor w2, Tensor b2) -> "
      "Tensor",
      &posenc::fourier_mlp_op);
  m.def(
      "rotate_pairs(Tensor tokens, Tensor angles, int prefix_tokens=0, "
      "str pairs=\"interleaved\") -> Tensor",
      &posenc::rotate_pairs_op);
}
