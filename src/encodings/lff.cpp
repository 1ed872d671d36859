// `lff`: Learnable Fourier Features (Li et al., NeurIPS 2021, Algorithm 1).
// A position x in R^M, in each of G groups, is encoded as
//   r_x = 1/sqrt(F) [cos(x W_r^T) || sin(x W_r^T)]      W_r: (F/2, M), init N(0, gamma^-2)
//   y   = GELU(r_x W_1 + B_1) W_2 + B_2                  W_1: (F, H), W_2: (H, D/G)
// with W_r and the MLP shared by all groups, and the G outputs concatenated into D = C channels.
// r_x . r_y = (1/F) sum_k cos((x - y) . w_k) over the F/2 rows w_k of W_r, so
// 2 r_x . r_y (the mean of those cosines) estimates exp(-||x - y||^2 / (2 gamma^2)) at init under
// the paper's convention: gamma is the kernel's length scale in coordinate units.
//
// Submodule names follow the common PyTorch port (Wr.weight, mlp.0.*, mlp.2.*) so its state dicts
// map one to one.
#include <cmath>

#include <torch/torch.h>

#include "posenc/kernels/fourier_features.h"
#include "posenc/kernels/fourier_mlp.h"
#include "posenc/kernels/linear.h"
#include "posenc/encoding_registry.h"

namespace posenc {
namespace {

class LearnableFourierEncodingImpl : public AdditiveEncodingImpl {
 public:
  LearnableFourierEncodingImpl(const EncodingOptions& options, const EncodingContext& context)
      : AdditiveEncodingImpl(options, context),
        fourier_dim_(options.integer("F")),
        hidden_dim_(options.integer("H")),
        groups_(options.integer("G")),
        values_(options.integer("M")),
        variant_(options.choice("variant")),
        normalized_coords_(options.choice("coords") == "normalized") {
    const double gamma = options.number("gamma");
    TORCH_CHECK(fourier_dim_ >= 2 && fourier_dim_ % 2 == 0,
                "lff F (Fourier feature dimension, cos and sin halves) must be even and >= 2, "
                "got F = ",
                fourier_dim_);
    TORCH_CHECK(hidden_dim_ >= 1,
                "lff H (MLP hidden dimension) must be >= 1, got H = ", hidden_dim_);
    // Far beyond any use (the paper's F is 64 to 512) and a few GB of weights at the MLP's
    // widest: a clear message instead of an allocation failure, or minutes of swapping.
    constexpr int64_t kMaxWidth = 65536;
    TORCH_CHECK(fourier_dim_ <= kMaxWidth && hidden_dim_ <= kMaxWidth, "lff F and H must be at "
                "most ", kMaxWidth, " (the paper uses F = 128..512, H = 32), got F = ",
                fourier_dim_, ", H = ", hidden_dim_);
    TORCH_CHECK(groups_ >= 1 && values_ >= 1,
                "lff G (position groups) and M (values per group) must be >= 1, got G = ", groups_,
                ", M = ", values_);
    TORCH_CHECK(dim() % groups_ == 0,
                "lff concatenates the outputs of its G groups into C "
                "channels: C must be divisible by G, got C = ",
                dim(), ", G = ", groups_);
    TORCH_CHECK(gamma > 0.0 && std::isfinite(gamma), "lff gamma must be a positive number, got ",
                gamma);
    const int64_t group_dim = dim() / groups_;

    if (variant_ == "mlp") {
      // Ablation: the MLP on raw coordinates, no Fourier features.
      register_mlp(values_, group_dim);
      return;
    }
    // The paper reads N(0, gamma^-2) as a variance (std 1/gamma); the public PyTorch ports use
    // std gamma^-2.
    const double init_std = options.choice("init") == "paper" ? 1.0 / gamma : 1.0 / (gamma * gamma);
    wr_ = register_module(
        "Wr", torch::nn::Linear(torch::nn::LinearOptions(values_, fourier_dim_ / 2).bias(false)));
    {
      torch::NoGradGuard no_grad;
      wr_->weight.normal_(0.0, init_std);
    }
    wr_->weight.set_requires_grad(options.boolean("learn_fourier"));
    if (variant_ == "fourier_mlp") {
      register_mlp(fourier_dim_, group_dim);
    } else {
      // Ablation: Fourier features followed by a single linear projection.
      projection_ = register_module("proj", torch::nn::Linear(fourier_dim_, group_dim));
    }
  }

  bool accepts_positions() const override { return true; }

 protected:
  torch::Tensor compute_embedding(const TokenLayout& layout, const torch::TensorOptions&) override {
    torch::Tensor positions;  // (B', P, G, M)
    if (layout.is_grid()) {
      TORCH_CHECK(groups_ == 1 && values_ == 2, "lff with G = ", groups_, ", M = ", values_,
                  " cannot encode a 2-D token grid (that needs G = 1, M = 2, the default): "
                  "image models take plain lff; grouped positions are for token sets (posenc "
                  "train --task, docs/point_sets.md; TokenLayout::at_positions in C++)");
      positions = patch_centres(layout.grid()).unsqueeze(0).unsqueeze(2);
    } else {
      check_position_shape(layout, groups_, values_);
      positions = layout.positions().to(parameter_options());
    }
    const auto batch = positions.size(0);
    const auto count = positions.size(1);
    // (B', P, G, D/G) -> (B', P, C), groups concatenated
    auto encoded = encode(positions).reshape({batch, count, dim()});
    return with_zero_prefix(encoded, layout.prefix_tokens());
  }

 private:
  // Linear(in, H), GELU, Linear(H, out), registered as "mlp" (mlp.0, mlp.2) for the state dict;
  // fourier_mlp runs them with the Fourier features in one fused kernel, run_mlp (the mlp
  // ablation, on raw coordinates) through posenc::linear.
  void register_mlp(int64_t in, int64_t out) {
    mlp_in_ = torch::nn::Linear(in, hidden_dim_);
    mlp_out_ = torch::nn::Linear(hidden_dim_, out);
    register_module("mlp", torch::nn::Sequential(mlp_in_, torch::nn::GELU(), mlp_out_));
  }

  // (..., in) -> (..., out)
  torch::Tensor run_mlp(const torch::Tensor& input) const {
    auto hidden = torch::gelu(posenc::linear(input, mlp_in_->weight, mlp_in_->bias));  // (..., H)
    return posenc::linear(hidden, mlp_out_->weight, mlp_out_->bias);
  }

  // dtype and device of the parameters, where positions must be too
  torch::TensorOptions parameter_options() const { return parameters().front().options(); }

  // Patch centres in (row, column) order: in patch units (i + 0.5, j + 0.5), or divided by the
  // grid extent so that any grid spans [0, 1] (coords=normalized).
  // returns (H*W, 2)
  torch::Tensor patch_centres(const TokenGrid& grid) const {
    auto options = parameter_options();
    auto rows = torch::arange(grid.height, options) + 0.5;
    auto columns = torch::arange(grid.width, options) + 0.5;
    if (normalized_coords_) {
      rows = rows / static_cast<double>(grid.height);
      columns = columns / static_cast<double>(grid.width);
    }
    auto mesh = torch::meshgrid({rows, columns}, "ij");
    return torch::stack({mesh[0].reshape(-1), mesh[1].reshape(-1)}, 1);
  }

  // positions: (..., M) -> (..., D/G)
  torch::Tensor encode(const torch::Tensor& positions) {
    if (variant_ == "mlp")
      return run_mlp(positions);
    if (variant_ == "fourier_mlp")
      return fourier_mlp(positions, wr_->weight, mlp_in_->weight, mlp_in_->bias, mlp_out_->weight,
                         mlp_out_->bias);
    auto features = fourier_features(positions, wr_->weight);  // (..., F)
    return posenc::linear(features, projection_->weight, projection_->bias);
  }

  int64_t fourier_dim_;
  int64_t hidden_dim_;
  int64_t groups_;
  int64_t values_;
  std::string variant_;
  bool normalized_coords_;
  torch::nn::Linear wr_{nullptr};
  torch::nn::Linear mlp_in_{nullptr}, mlp_out_{nullptr};
  torch::nn::Linear projection_{nullptr};
};

}  // namespace

EncodingDefinition lff_definition() {
  return define_encoding<LearnableFourierEncodingImpl>(
      "lff", "Learnable Fourier Features + MLP (Li et al. 2021); any real positions (B, N, G, M).",
      {{"F", OptionType::Integer, 128, "Fourier feature dimension |F| (even): F/2 frequencies"},
       {"H", OptionType::Integer, 32, "hidden dimension |H| of the MLP"},
       {"gamma", OptionType::Number, 1.0,
        "kernel length scale in coordinate units: W_r ~ N(0, gamma^-2)"},
       {"G", OptionType::Integer, 1, "position groups sharing W_r and the MLP (grids: 1)"},
       {"M", OptionType::Integer, 2, "values per group (grids: 2, row and column)"},
       {"init",
        OptionType::Choice,
        "paper",
        "W_r init: paper = variance gamma^-2 (std 1/gamma); port = std gamma^-2 (public PyTorch "
        "ports)",
        {"paper", "port"}},
       {"variant",
        OptionType::Choice,
        "fourier_mlp",
        "fourier_mlp (the method); ablations: fourier_linear (Fourier + one linear layer), mlp "
        "(MLP on raw coordinates)",
        {"fourier_mlp", "fourier_linear", "mlp"}},
       {"learn_fourier", OptionType::Boolean, true,
        "train W_r; false keeps it at its random initialisation (frozen ablation)"},
       {"coords",
        OptionType::Choice,
        "index",
        "grid positions: patch centres in patch units (index) or scaled to [0, 1] (normalized)",
        {"index", "normalized"}}});
}

}  // namespace posenc
