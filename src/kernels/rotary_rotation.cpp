#include "posenc/kernels/rotary_rotation.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>

#include "kernels/simd_dispatch.h"
#include "posenc/kernels/kernel_settings.h"

namespace posenc {
namespace {

torch::Tensor with_contiguous_channels(const torch::Tensor& tokens) {
  return tokens.stride(2) == 1 ? tokens : tokens.contiguous();
}

void check_arguments(const torch::Tensor& tokens, const torch::Tensor& angles, int64_t prefix) {
  TORCH_CHECK(tokens.dim() == 3, "rotate_pairs: tokens must be (B, N, C), got ", tokens.sizes());
  TORCH_CHECK(angles.dim() == 4,
              "rotate_pairs: angles must be (T, N - prefix, heads, head_dim / 2), got ",
              angles.sizes());
  const int64_t batch = tokens.size(0), count = tokens.size(1), channels = tokens.size(2);
  TORCH_CHECK(prefix >= 0 && prefix <= count, "rotate_pairs: prefix must be in [0, N = ", count,
              "], got ", prefix);
  TORCH_CHECK(angles.size(0) == 1 || angles.size(0) == batch,
              "rotate_pairs: angles must have 1 image (shared by all) or B = ", batch,
              " images, got ", angles.sizes());
  TORCH_CHECK(angles.size(1) == count - prefix, "rotate_pairs: angles hold ", angles.size(1),
              " positions, but the tokens have ", count - prefix, " positioned tokens (N = ", count,
              ", prefix = ", prefix, ")");
  TORCH_CHECK(angles.size(2) * 2 * angles.size(3) == channels, "rotate_pairs: angles of ",
              angles.size(2), " heads x ", angles.size(3), " pairs turn ",
              angles.size(2) * 2 * angles.size(3), " channels, but the tokens have C = ",
              channels);
}

void check_fused_applies(const torch::Tensor& tokens, const torch::Tensor& angles) {
  TORCH_CHECK(rotate_pairs_fused_applies(tokens, angles),
              "rotate_pairs_fused runs float32 CPU tensors; got tokens ", tokens.scalar_type(),
              " on ", tokens.device(), ", angles ", angles.scalar_type(), " on ", angles.device(),
              "; use rotate_pairs, which falls back to the reference");
}

// The kernel's cos and sin tables (simd_kernels.h, RotaryProblem) of angles (T, P, heads, pairs):
// per pair for half pairs; per channel, sin signed, for interleaved ones: (T, P, C).
std::pair<torch::Tensor, torch::Tensor> kernel_tables(const torch::Tensor& angles,
                                                      bool interleaved) {
  auto cos = angles.cos(), sin = angles.sin();
  if (!interleaved)
    return {cos.contiguous(), sin.contiguous()};
  const int64_t tables = angles.size(0), positions = angles.size(1);
  return {torch::stack({cos, cos}, -1).reshape({tables, positions, -1}),
          torch::stack({-sin, sin}, -1).reshape({tables, positions, -1})};
}

kernels::RotaryProblem rotary_problem(const torch::Tensor& tokens, const torch::Tensor& angles,
                                      int64_t prefix, bool interleaved, const torch::Tensor& cos,
                                      const torch::Tensor& sin) {
  kernels::RotaryProblem problem;
  problem.batch = tokens.size(0);
  problem.positioned = tokens.size(1) - prefix;
  problem.heads = angles.size(2);
  problem.head_dim = 2 * angles.size(3);
  problem.table_batch = angles.size(0);
  problem.interleaved = interleaved;
  problem.cos = cos.data_ptr<float>();
  problem.sin = sin.data_ptr<float>();
  return problem;
}

// The positioned tokens of (B, N, C) with channels contiguous, from token `prefix` on.
kernels::ConstTokenTensor positioned_view(const torch::Tensor& tokens, int64_t prefix) {
  return {tokens.data_ptr<float>() + prefix * tokens.stride(1), tokens.stride(0),
          tokens.stride(1)};
}
kernels::TokenTensor positioned_output(torch::Tensor& tokens, int64_t prefix) {
  return {tokens.data_ptr<float>() + prefix * tokens.stride(1), tokens.stride(0),
          tokens.stride(1)};
}

// A new (B, N, C) tensor like `source` whose prefix tokens are already `source`'s: the kernels
// write only the positioned tokens, which are not rotated.
torch::Tensor with_prefix_of(const torch::Tensor& source, int64_t prefix) {
  auto output = torch::empty(source.sizes(), source.options());
  if (prefix > 0)
    output.narrow(1, 0, prefix).copy_(source.narrow(1, 0, prefix));
  return output;
}

// Enough table rows per task that a task turns at least ~16k channels.
int64_t row_grain(const kernels::RotaryProblem& problem) {
  const int64_t images = problem.table_batch == 1 ? problem.batch : 1;
  return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, images * problem.heads *
                                                                problem.head_dim));
}

// The work of both autograd functions below: one or more tensors (the queries and keys of a
// block) turned by the same angles, the cos and sin tables made once.
struct Rotation {
  // each of `tokens` (B, N, C), angles (T, P, heads, pairs) -> one (B, N, C) per tensor
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* context,
                                                torch::autograd::variable_list tokens,
                                                const torch::Tensor& angles, int64_t prefix,
                                                bool interleaved) {
    const auto [cos, sin] = kernel_tables(angles, interleaved);
    const auto& kernels = kernels::active_kernels();
    torch::autograd::variable_list outputs;
    for (auto& input : tokens) {
      input = with_contiguous_channels(input);
      const auto problem = rotary_problem(input, angles, prefix, interleaved, cos, sin);
      auto output = with_prefix_of(input, prefix);
      const auto input_view = positioned_view(input, prefix);
      const auto output_view = positioned_output(output, prefix);
      at::parallel_for(0, problem.table_batch * problem.positioned, row_grain(problem),
                       [&](int64_t begin, int64_t end) {
                         kernels.rotary_forward(problem, input_view, output_view,
                                                /*inverse=*/false, begin, end);
                       });
      outputs.push_back(std::move(output));
    }
    // The tokens are read again only for the angles' gradient: with fixed angles (rope_axial)
    // nothing but the tables is kept.
    torch::autograd::variable_list saved(tokens.size());
    if (angles.requires_grad())
      saved = tokens;
    saved.insert(saved.end(), {angles, cos, sin});
    context->save_for_backward(saved);
    context->saved_data["prefix"] = prefix;
    context->saved_data["interleaved"] = interleaved;
    return outputs;
  }

  // -> the gradients of the tokens..., the angles, and none for prefix and the pair layout
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto saved = context->get_saved_variables();
    const size_t count = saved.size() - 3;
    const auto& angles = saved[count];
    const auto& cos = saved[count + 1];
    const auto& sin = saved[count + 2];
    const int64_t prefix = context->saved_data["prefix"].toInt();
    const bool interleaved = context->saved_data["interleaved"].toBool();
    const bool want_angles = context->needs_input_grad(count);
    const auto& kernels = kernels::active_kernels();
    torch::autograd::variable_list gradients(count + 3);  // tokens..., angles, prefix, pairs
    torch::Tensor grad_cos, grad_sin;  // the tables' gradients, summed over the tensors
    for (size_t i = 0; i < count; ++i) {
      if (!grad_outputs[i].defined())
        continue;  // an output that took no part in the loss
      // (B, N, C) as the tokens; float32, as the fused path runs
      const auto grad_output = with_contiguous_channels(grad_outputs[i].to(torch::kFloat32));
      const auto problem = rotary_problem(grad_output, angles, prefix, interleaved, cos, sin);
      auto grad_tokens = with_prefix_of(grad_output, prefix);
      const auto grad_view = positioned_view(grad_output, prefix);
      const auto grad_tokens_view = positioned_output(grad_tokens, prefix);
      const int64_t rows = problem.table_batch * problem.positioned;
      if (!want_angles) {
        at::parallel_for(0, rows, row_grain(problem), [&](int64_t begin, int64_t end) {
          kernels.rotary_forward(problem, grad_view, grad_tokens_view, /*inverse=*/true, begin,
                                 end);
        });
      } else {
        // Each table row is one task's: its sums over the images run in a fixed order, whatever
        // the thread count.
        auto tensor_grad_cos = torch::empty_like(cos), tensor_grad_sin = torch::empty_like(sin);
        TORCH_INTERNAL_ASSERT(saved[i].defined(), "learnt angles keep their tokens");
        const auto input_view = positioned_view(saved[i], prefix);
        at::parallel_for(0, rows, row_grain(problem), [&](int64_t begin, int64_t end) {
          kernels.rotary_backward(problem, grad_view, input_view, grad_tokens_view,
                                  tensor_grad_cos.data_ptr<float>(),
                                  tensor_grad_sin.data_ptr<float>(), begin, end);
        });
        grad_cos = grad_cos.defined() ? grad_cos + tensor_grad_cos : tensor_grad_cos;
        grad_sin = grad_sin.defined() ? grad_sin + tensor_grad_sin : tensor_grad_sin;
      }
      gradients[i] = grad_tokens;
    }
    if (want_angles && grad_cos.defined())
      gradients[count] = angle_gradient(grad_cos, grad_sin, cos, sin, angles.sizes(), interleaved);
    return gradients;
  }

 private:
  // the tables' gradients -> per pair, then through cos and sin of the angles
  static torch::Tensor angle_gradient(const torch::Tensor& grad_cos, const torch::Tensor& grad_sin,
                                      const torch::Tensor& cos, const torch::Tensor& sin,
                                      c10::IntArrayRef pair_shape, bool interleaved) {
    if (!interleaved)  // one entry per pair already; d cos = -sin, d sin = cos
      return grad_sin * cos - grad_cos * sin;
    // (T, P, C) -> (T, P, heads, pairs, 2): both channels of a pair read the same cos; the first
    // channel's table holds -sin, the second's +sin
    const auto split = [&](const torch::Tensor& t) {
      return t.view({pair_shape[0], pair_shape[1], pair_shape[2], pair_shape[3], 2});
    };
    const auto grad_pair_cos = split(grad_cos).sum(-1);
    const auto grad_pair_sin = split(grad_sin).select(-1, 1) - split(grad_sin).select(-1, 0);
    return grad_pair_sin * split(cos).select(-1, 0) - grad_pair_cos * split(sin).select(-1, 1);
  }
};

// (Autograd functions take tensors one by one: a tensor list argument would not be tracked.)
class RotatePairsFunction : public torch::autograd::Function<RotatePairsFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* context,
                               const torch::Tensor& tokens, const torch::Tensor& angles,
                               int64_t prefix, bool interleaved) {
    return Rotation::forward(context, {tokens}, angles, prefix, interleaved)[0];
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::variable_list grad_outputs) {
    return Rotation::backward(context, std::move(grad_outputs));
  }
};

class RotateQueriesAndKeysFunction
    : public torch::autograd::Function<RotateQueriesAndKeysFunction> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* context,
                                                const torch::Tensor& queries,
                                                const torch::Tensor& keys,
                                                const torch::Tensor& angles, int64_t prefix,
                                                bool interleaved) {
    return Rotation::forward(context, {queries, keys}, angles, prefix, interleaved);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::variable_list grad_outputs) {
    return Rotation::backward(context, std::move(grad_outputs));
  }
};

}  // namespace

std::string to_string(RotaryPairs pairs) {
  return pairs == RotaryPairs::Interleaved ? "interleaved" : "half";
}

RotaryPairs parse_rotary_pairs(const std::string& name) {
  for (RotaryPairs pairs : {RotaryPairs::Interleaved, RotaryPairs::Half})
    if (name == to_string(pairs))
      return pairs;
  TORCH_CHECK(false, "unknown rotary pair layout '", name, "'; use interleaved or half");
}

bool rotate_pairs_fused_applies(const torch::Tensor& tokens, const torch::Tensor& angles) {
  return tokens.device().is_cpu() && tokens.scalar_type() == torch::kFloat &&
         angles.device().is_cpu() && angles.scalar_type() == torch::kFloat;
}

torch::Tensor rotate_pairs(const torch::Tensor& tokens, const torch::Tensor& angles,
                           int64_t prefix, RotaryPairs pairs) {
  if (fused_kernels_enabled() && rotate_pairs_fused_applies(tokens, angles))
    return rotate_pairs_fused(tokens, angles, prefix, pairs);
  return rotate_pairs_reference(tokens, angles, prefix, pairs);
}

torch::Tensor rotate_pairs_fused(const torch::Tensor& tokens, const torch::Tensor& angles,
                                 int64_t prefix, RotaryPairs pairs) {
  check_arguments(tokens, angles, prefix);
  check_fused_applies(tokens, angles);
  return RotatePairsFunction::apply(tokens, angles.contiguous(), prefix,
                                    pairs == RotaryPairs::Interleaved);
}

std::pair<torch::Tensor, torch::Tensor> rotate_queries_and_keys(const torch::Tensor& queries,
                                                                const torch::Tensor& keys,
                                                                const torch::Tensor& angles,
                                                                int64_t prefix, RotaryPairs pairs) {
  check_arguments(queries, angles, prefix);
  check_arguments(keys, angles, prefix);
  if (!fused_kernels_enabled() || !rotate_pairs_fused_applies(queries, angles) ||
      !rotate_pairs_fused_applies(keys, angles))
    return {rotate_pairs_reference(queries, angles, prefix, pairs),
            rotate_pairs_reference(keys, angles, prefix, pairs)};
  const auto turned = RotateQueriesAndKeysFunction::apply(queries, keys, angles.contiguous(),
                                                          prefix,
                                                          pairs == RotaryPairs::Interleaved);
  return {turned[0], turned[1]};
}

torch::Tensor rotate_pairs_reference(const torch::Tensor& tokens, const torch::Tensor& angles,
                                     int64_t prefix, RotaryPairs pairs) {
  check_arguments(tokens, angles, prefix);
  const int64_t batch = tokens.size(0), positioned = tokens.size(1) - prefix;
  const int64_t heads = angles.size(2), half = angles.size(3);
  const auto cos = angles.cos(), sin = angles.sin();  // (T, P, heads, pairs), T broadcasts
  // (B, P, C) -> (B, P, heads, head_dim): each head's pairs (a_i, b_i)
  const auto x =
      tokens.narrow(1, prefix, positioned).reshape({batch, positioned, heads, 2 * half});
  torch::Tensor a, b;
  if (pairs == RotaryPairs::Interleaved) {
    const auto split = x.unflatten(-1, {half, 2});
    a = split.select(-1, 0);
    b = split.select(-1, 1);
  } else {
    a = x.narrow(-1, 0, half);
    b = x.narrow(-1, half, half);
  }
  // (a, b) turned by theta: (a cos - b sin, a sin + b cos)
  const auto turned_a = a * cos - b * sin;
  const auto turned_b = a * sin + b * cos;
  auto rotated = pairs == RotaryPairs::Interleaved
                     ? torch::stack({turned_a, turned_b}, -1).flatten(-2)
                     : torch::cat({turned_a, turned_b}, -1);
  rotated = rotated.reshape({batch, positioned, tokens.size(2)});
  return prefix > 0 ? torch::cat({tokens.narrow(1, 0, prefix), rotated}, 1) : rotated;
}

}  // namespace posenc
