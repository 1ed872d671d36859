#pragma once

#include <cstdint>
#include <string>
#include <vector>

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
// positions for tokens that are not on a grid (points, bounding boxes), or, for a batch of images
// of different sizes, each image on its own grid with padding after its tokens. Encodings read
// positions only from here, so one model can run at any grid size or on any point set.
class TokenLayout {
 public:
  // A grid layout; implicit because grids are the common case: `encoding(tokens, {7, 7, 1})`.
  TokenLayout(TokenGrid grid);  // NOLINT(google-explicit-constructor)

  // positions: (B, N - prefix_tokens, G, M), real and finite: G groups of M-dimensional values per
  // positioned token. Throws on a wrong rank, a non-floating dtype or a non-finite value.
  static TokenLayout at_positions(torch::Tensor positions, int64_t prefix_tokens = 0);

  // A batch of images each on its own grid (native resolution: any size and aspect ratio),
  // padded: image b's row of the (B, N, C) tokens holds its prefix tokens, then its
  // H_b * W_b patch tokens in row-major order, then padding up to N = prefix + max_b H_b * W_b.
  // Every image has the same prefix tokens. Throws for an empty batch, an invalid grid or prefix
  // counts that differ. When every image has the same grid there is no padding, and the layout is
  // that grid's (is_grid()).
  static TokenLayout of_grids(std::vector<TokenGrid> grids);

  // One grid for the whole batch (is_grid), explicit positions, or a grid per image.
  bool is_grid() const { return !positions_.defined() && grids_.empty(); }
  bool is_grid_batch() const { return !grids_.empty(); }
  bool has_positions() const { return positions_.defined(); }
  // Throws when the layout holds explicit positions instead of a grid.
  const TokenGrid& grid() const;
  // (B, N - prefix, G, M). Throws when the layout is a grid.
  const torch::Tensor& positions() const;
  // Image b's grid, one per image. Throws unless is_grid_batch().
  const std::vector<TokenGrid>& grids() const;
  // (B, N) bool: true for each image's own tokens (prefix and patches), false for padding.
  // Throws unless is_grid_batch().
  torch::Tensor token_mask() const;
  // The images grouped by grid, in order of first appearance, for work done once per grid: each
  // distinct grid with the batch indices of its images, an (n) int64 tensor on `device` (for
  // index_select and index_copy). Throws unless is_grid_batch().
  struct GridGroup {
    TokenGrid grid;
    torch::Tensor images;
  };
  std::vector<GridGroup> images_by_grid(const torch::Device& device = torch::kCPU) const;

  int64_t prefix_tokens() const { return grid_.prefix_tokens; }
  // Tokens that carry a position: H*W on a grid, positions.size(1) at explicit positions, the
  // largest H_b * W_b in a batch of grids (padding included).
  int64_t positioned_tokens() const;
  int64_t total_tokens() const { return prefix_tokens() + positioned_tokens(); }

  // Checks that tokens (B, N, C) fit this layout: rank 3, N == total_tokens(), and at explicit
  // positions or on a batch of grids the same batch size. `who` names the caller in the message.
  void check_tokens(const torch::Tensor& tokens, const std::string& who) const;
  std::string describe() const;

 private:
  TokenLayout(TokenGrid grid, torch::Tensor positions);

  TokenGrid grid_;  // for explicit positions and batches of grids only prefix_tokens is meaningful
  torch::Tensor positions_;      // undefined unless explicit positions
  std::vector<TokenGrid> grids_;  // one per image in a batch of grids; empty otherwise
  int64_t largest_grid_tokens_ = 0;
};

}  // namespace posenc
