#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <nlohmann/json.hpp>

#include "posenc/encoding_options.h"
#include "posenc/kernels/rotary_rotation.h"
#include "posenc/token_layout.h"

namespace posenc {

// What an encoding is built for. Learned tables are sized from `trained_grid`; at any other grid
// they are resampled (see each encoding's documentation in docs/encodings.md).
struct EncodingContext {
  int64_t dim = 0;                       // C: channels of the tokens the encoding is applied to
  TokenGrid trained_grid = {14, 14, 1};  // DeiT at 224 px, 16 px patches, one class token
  // The attention heads C splits into: rotary encodings rotate each head's C / heads channels.
  int64_t heads = 1;

  void validate() const;
};

enum class EncodingKind {
  Additive,     // tokens + PE(positions): sinusoidal, learned tables, Learnable Fourier Features
  Conditional,  // tokens transformed from their neighbourhood: PEG
  Rotary,       // inside attention: queries and keys rotated by their positions (RoPE)
  Bias,         // inside attention: a (heads, N, N) term added to the logits (Swin, BEiT)
};

// "additive", "conditional", "rotary", "bias"
const char* describe(EncodingKind kind);

// The one interface every positional encoding implements. A model applies an encoding to its
// tokens and their layout and never needs to know which encoding it holds.
class PositionalEncodingImpl : public torch::nn::Module {
 public:
  // tokens: (B, N, C), N = layout.total_tokens(), C = dim()
  // returns (B, N, C), same dtype and device as tokens.
  // Throws with a message naming the mismatch when tokens and layout disagree, when the encoding
  // cannot use the layout (e.g. PEG on explicit positions), or when the dtype or device of the
  // tokens differs from the encoding's parameters.
  torch::Tensor forward(const torch::Tensor& tokens, const TokenLayout& layout);

  virtual EncodingKind kind() const = 0;
  // Whether the encoding reads explicit continuous positions (TokenLayout::at_positions).
  virtual bool accepts_positions() const { return false; }

  const std::string& type() const { return type_; }
  // {"type": ..., every option with its value}: passing it to make_encoding rebuilds the encoding.
  const nlohmann::json& config() const { return config_; }
  const EncodingContext& context() const { return context_; }
  int64_t dim() const { return context_.dim; }
  int64_t heads() const { return context_.heads; }
  int64_t head_dim() const { return context_.dim / context_.heads; }

 protected:
  PositionalEncodingImpl(const EncodingOptions& options, const EncodingContext& context);

  // Called by forward() after the checks above, with a single grid or explicit positions: a
  // batch of grids (TokenLayout::of_grids) is split by grid first (transform_each_grid).
  // tokens: (B, N, C) -> (B, N, C)
  virtual torch::Tensor transform(const torch::Tensor& tokens, const TokenLayout& layout) = 0;

  // A batch of images on their own grids: the images of each distinct grid transformed together
  // on that grid (transform), their padding tokens passed through unchanged, so that every image
  // gets what it would get alone. tokens: (B, N, C) -> (B, N, C)
  torch::Tensor transform_each_grid(const torch::Tensor& tokens, const TokenLayout& layout);

  // Throws unless positions have G groups of M values each: for encodings with fixed G, M.
  void check_position_shape(const TokenLayout& layout, int64_t groups, int64_t values) const;

  // The checks of forward(): tokens against the layout and against the encoding.
  void check_tokens(const torch::Tensor& tokens, const TokenLayout& layout) const;

 private:
  void check_parameters_match(const torch::Tensor& tokens) const;

  std::string type_;
  nlohmann::json config_;
  EncodingContext context_;
};

// An encoding that adds a positional embedding PE(layout) to the tokens.
class AdditiveEncodingImpl : public PositionalEncodingImpl {
 public:
  EncodingKind kind() const final { return EncodingKind::Additive; }

  // The embedding added to the tokens, for inspection (similarity maps) and caching.
  // returns (1, N, C) on a grid (one PE shared by the batch), (B, N, C) at explicit positions;
  // prefix tokens included. `options` gives the dtype/device for parameter-free encodings.
  //
  // On a grid with autograd off (inference), the PE depends only on the grid and the weights, so
  // it is cached: the next call with the same grid, dtype and device returns it without
  // recomputing, and any change to a parameter (an optimiser step, load, copy_, to()) is seen by
  // its version counter and recomputes. The cached tensor is shared: do not modify it in place
  // (that is detected too, and recomputes). Writes through `parameter.data()` bypass the version
  // counter; call clear_embedding_cache() after them.
  torch::Tensor embedding(const TokenLayout& layout, const torch::TensorOptions& options);

  void clear_embedding_cache();

 protected:
  using PositionalEncodingImpl::PositionalEncodingImpl;

  virtual torch::Tensor compute_embedding(const TokenLayout& layout,
                                          const torch::TensorOptions& options) = 0;

  // Prepends zero rows for prefix tokens, which have no position.
  // positioned: (B', P, C) -> (B', prefix + P, C)
  static torch::Tensor with_zero_prefix(const torch::Tensor& positioned, int64_t prefix_tokens);

 private:
  torch::Tensor transform(const torch::Tensor& tokens, const TokenLayout& layout) final;

  // What a cached embedding was computed from: the grid, dtype and device, and each parameter's
  // storage and version.
  struct EmbeddingKey {
    TokenGrid grid;
    caffe2::TypeMeta dtype;
    torch::Device device = torch::kCPU;
    std::vector<std::pair<const void*, int64_t>> parameters;
    bool operator==(const EmbeddingKey& other) const;
  };
  EmbeddingKey embedding_key(const TokenGrid& grid, const torch::TensorOptions& options) const;

  std::optional<EmbeddingKey> cached_key_;
  torch::Tensor cached_embedding_;
  int64_t cached_embedding_version_ = 0;
};

// DINOv3's training-time augmentation of a grid's rotary coordinates (the shift_coords,
// jitter_coords and rescale_coords of its RopePositionEmbedding, which timm's RoPE modules take
// too): one transform per training step, the same in every block,
//   x -> (x + shift_x) * scale_x,   y -> (y + shift_y) * scale_y,
// in the grid coordinates' own units (patch indices, or [-1, 1] with coords=normalized).
struct CoordinateAugmentation {
  double shift_x = 0.0, shift_y = 0.0;
  double scale_x = 1.0, scale_y = 1.0;  // each axis's jitter times the rescale both share
  bool is_identity() const;
};

// What a rotary encoding does to the queries and the keys of one block's attention, before they
// split into heads: (B, N, C) each -> (B, N, C) each. Empty: nothing.
using QueryKeyRotation = std::function<std::pair<torch::Tensor, torch::Tensor>(
    const torch::Tensor& queries, const torch::Tensor& keys)>;

// An encoding applied inside attention: a model passes it the queries and the keys (B, N, C) of
// each block, and it rotates each head's C / heads channels pair by pair by angles that grow
// linearly with the token's position, so that the logit q_i . k_j depends on the positions of
// tokens i and j only through their difference (Su et al.'s RoPE; Heo et al. 2024 for images).
// Prefix tokens are not rotated. Rotation keeps the norm of every head's query and key.
// Implemented with real arithmetic (no complex tensors), so models stay exportable.
class RotaryEncodingImpl : public PositionalEncodingImpl {
 public:
  EncodingKind kind() const final { return EncodingKind::Rotary; }

  // The rotation angles of the positioned tokens: (1, P, heads, head_dim / 2) on a grid,
  // (B, P, heads, head_dim / 2) at explicit positions. Pair i of a head is the channels
  // (2i, 2i + 1) with interleaved pairs (naver's RoPE-ViT, as complex numbers), (i, i + head_dim/2)
  // with rotate-half pairs (EVA-02, timm, DINOv3).
  // With a coordinate augmentation other than the identity, at the grid's augmented coordinates
  // (explicit positions take none: an error says so). On a batch of grids, (B, P, heads,
  // head_dim / 2) with P the largest grid's tokens: each image's grid's angles, zero (no turn)
  // for its padding.
  torch::Tensor angles(const TokenLayout& layout, const torch::TensorOptions& options,
                       const CoordinateAugmentation& augmentation = {});

  // One attention block's rotation at `layout`: checks the queries and keys as forward() does
  // and turns both by the same angles (rotate_queries_and_keys). `options`: the dtype and device
  // of the tokens it will turn.
  QueryKeyRotation rotation(const TokenLayout& layout, const torch::TensorOptions& options,
                            const CoordinateAugmentation& augmentation = {});

  // The coordinate augmentation of one training step, drawn as DINOv3 draws it from torch's
  // default CPU generator (so a seed, and a resumed run's restored generator, replay it): a
  // uniform shift in [-shift_coords, shift_coords] per axis, a log-uniform jitter in
  // [1 / jitter_coords, jitter_coords] per axis, a log-uniform rescale in
  // [1 / rescale_coords, rescale_coords] for both. The identity in eval mode, or when the options
  // are at their defaults (0, 1, 1) or not declared. A model draws once per forward and passes
  // the draw to every block's rotation(); forward() on the encoding alone draws per call.
  CoordinateAugmentation draw_coordinate_augmentation() const;
  // Whether any of shift_coords, jitter_coords, rescale_coords is set (training draws then).
  bool augments_coordinates() const;

 protected:
  // Reads the "pairs" option (rotary_pairs_option()) and, where the encoding declares them
  // (with_coordinate_augmentation_options()), the coordinate augmentation's; throws unless
  // head_dim is even.
  RotaryEncodingImpl(const EncodingOptions& options, const EncodingContext& context);

  // `augmentation` is for grid_coordinates(); it is the identity at explicit positions.
  virtual torch::Tensor compute_angles(const TokenLayout& layout,
                                       const torch::TensorOptions& options,
                                       const CoordinateAugmentation& augmentation) = 0;

  // The x (column) and y (row) coordinates of a grid's tokens, row-major, each (1, H*W): integer
  // patch indices (naver's RoPE-ViT), or with `normalized` the patch centres mapped to [-1, 1]
  // across the grid, (i + 0.5) * 2 / n - 1 (DINOv3), so that every grid spans the same range;
  // then transformed by `augmentation`. The unaugmented ones are kept for the last grid, dtype
  // and device asked for (shared: do not modify them in place).
  std::pair<torch::Tensor, torch::Tensor> grid_coordinates(
      const TokenGrid& grid, bool normalized, const torch::TensorOptions& options,
      const CoordinateAugmentation& augmentation);

 private:
  // rotate_pairs (kernels/rotary_rotation.h) of the positioned tokens by angles()
  torch::Tensor transform(const torch::Tensor& tokens, const TokenLayout& layout) final;

  // What the cached coordinates or angles of a grid were computed for.
  struct GridKey {
    int64_t height = 0, width = 0;
    bool normalized = false;
    caffe2::TypeMeta dtype;
    torch::Device device = torch::kCPU;
    bool operator==(const GridKey& other) const;
  };

  RotaryPairs pairs_;
  // the coordinate augmentation's ranges; 0, 1, 1: none
  double shift_coords_ = 0.0, jitter_coords_ = 1.0, rescale_coords_ = 1.0;
  std::optional<GridKey> coordinates_key_;
  std::pair<torch::Tensor, torch::Tensor> cached_coordinates_;
  // An encoding without parameters (rope_axial) turns a grid by the same angles every call, in
  // every block: they are computed once per grid, dtype and device.
  std::optional<GridKey> angles_key_;
  torch::Tensor cached_angles_;
};

// The option every rotary encoding declares: "pairs", interleaved or half.
OptionSpec rotary_pairs_option(const std::string& default_layout);
// `options` followed by those of DINOv3's training-time coordinate augmentation
// (CoordinateAugmentation): shift_coords, jitter_coords, rescale_coords, for the rotary
// encodings that take it.
std::vector<OptionSpec> with_coordinate_augmentation_options(std::vector<OptionSpec> options);

// An encoding applied inside attention as a term added to every head's logits, by the offset
// between two grid tokens (Swin's and BEiT's relative position bias): a model asks it for
// attention_bias(grid) in each block. Grids only. Applied alone through forward(), it is the
// attention that the bias alone gives (every content logit equal): each head's C / heads channels
// of token i become sum_j softmax_j(bias[h, i, j]) tokens[j], so the interface's shape, dtype and
// gradient contracts hold for it as for every other encoding.
class AttentionBiasEncodingImpl : public PositionalEncodingImpl {
 public:
  EncodingKind kind() const final { return EncodingKind::Bias; }

  // The logit term of `grid`'s N = prefix + H * W tokens: (heads, N, N), [h, i, j] added to the
  // logit of query i and key j.
  torch::Tensor attention_bias(const TokenGrid& grid, const torch::TensorOptions& options);
  // The same for a layout: (heads, N, N) on one grid; on a batch of grids (B, heads, N, N), each
  // image's own grid's bias, zero in the rows and columns of its padding.
  torch::Tensor attention_bias(const TokenLayout& layout, const torch::TensorOptions& options);
  // One module for every block (BEiT's shared relative position bias) instead of one each.
  virtual bool shared_across_blocks() const { return false; }

 protected:
  using PositionalEncodingImpl::PositionalEncodingImpl;

  virtual torch::Tensor compute_bias(const TokenGrid& grid, const torch::TensorOptions& options) = 0;

 private:
  torch::Tensor transform(const torch::Tensor& tokens, const TokenLayout& layout) final;
};

TORCH_MODULE(PositionalEncoding);

}  // namespace posenc
