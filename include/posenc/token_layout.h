#pragma once

#include <cstdint>
#include <string>

#include <torch/types.h>

namespace posenc {

// Where the patch tokens of an image sit: a height x width grid of patches in row-major order,
// preceded by `prefix_tokens` tokens that have no position (class token, distillation token).
// A DeiT at 224 px with 16 px patches is TokenGrid{14, 14, 1}.
struct TokenGrid {
  int64_t height = 0;
  int64_t width = 0;
  int64_t prefix_tokens = 0;

  int64_t grid_tokens() const { return height * width; }
  int64_t total_tokens() const { return prefix_tokens + height * width; }

  // Throws if a size is not positive or the prefix count is negative.
  void validate() const;
  // "14x14 grid + 1 prefix token"
  std::string describe() const;

  bool operator==(const TokenGrid& other) const {
    return height == other.height && width == other.width && prefix_tokens == other.prefix_tokens;
  }
  bool operator!=(const TokenGrid& other) const { return !(*this == other); }
};

// Where each token of a (B, N, C) sequence sits: on a TokenGrid, or at explicit continuous
// positions for tokens that are not on a grid (points, bounding boxes). Encodings read positions
// only from here, so one model can run at any grid size or on any point set.
class TokenLayout {
 public:
  // A grid layout; implicit because grids are the common case: `encoding(tokens, {7, 7, 1})`.
  TokenLayout(TokenGrid grid);  // NOLINT(google-explicit-constructor)

  // positions: (B, N - prefix_tokens, G, M), real and finite: G groups of M-dimensional values per
  // positioned token. Throws on a wrong rank, a non-floating dtype or a non-finite value.
  static TokenLayout at_positions(torch::Tensor positions, int64_t prefix_tokens = 0);

  bool is_grid() const { return !positions_.defined(); }
  // Throws when the layout holds explicit positions instead of a grid.
  const TokenGrid& grid() const;
  // (B, N - prefix, G, M). Throws when the layout is a grid.
  const torch::Tensor& positions() const;

  int64_t prefix_tokens() const { return grid_.prefix_tokens; }
  // Tokens that carry a position: H*W on a grid, positions.size(1) otherwise.
  int64_t positioned_tokens() const;
  int64_t total_tokens() const { return prefix_tokens() + positioned_tokens(); }

  // Checks that tokens (B, N, C) fit this layout: rank 3, N == total_tokens(), and on explicit
  // positions the same batch size. `who` names the caller in the message.
  void check_tokens(const torch::Tensor& tokens, const std::string& who) const;
  std::string describe() const;

 private:
  TokenLayout(TokenGrid grid, torch::Tensor positions);

  TokenGrid grid_;           // for explicit positions only prefix_tokens is meaningful
  torch::Tensor positions_;  // undefined for a grid layout
};

}  // namespace posenc
