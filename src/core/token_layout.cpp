#include "posenc/token_layout.h"

#include <algorithm>
#include <utility>
#include <vector>

#include <c10/util/Exception.h>
#include <torch/torch.h>

namespace posenc {

void TokenGrid::validate() const {
  TORCH_CHECK(height >= 1 && width >= 1, "token grid must have height and width >= 1, got ", height,
              "x", width);
  TORCH_CHECK(prefix_tokens >= 0, "token grid prefix token count must be >= 0, got ",
              prefix_tokens);
}

std::string TokenGrid::describe() const {
  return c10::str(height, "x", width, " grid + ", prefix_tokens, " prefix token",
                  prefix_tokens == 1 ? "" : "s");
}

TokenLayout::TokenLayout(TokenGrid grid) : grid_(grid) {
  grid_.validate();
}

TokenLayout::TokenLayout(TokenGrid grid, torch::Tensor positions)
    : grid_(grid), positions_(std::move(positions)) {}

TokenLayout TokenLayout::at_positions(torch::Tensor positions, int64_t prefix_tokens) {
  TORCH_CHECK(positions.defined(), "positions must be a defined tensor of shape (B, N, G, M)");
  TORCH_CHECK(positions.dim() == 4,
              "positions must have shape (B, N, G, M): batch, tokens, groups, values per group; "
              "got shape ",
              positions.sizes());
  TORCH_CHECK(positions.size(1) >= 1 && positions.size(2) >= 1 && positions.size(3) >= 1,
              "positions must have at least one token, group and value, got shape ",
              positions.sizes());
  TORCH_CHECK(torch::isFloatingType(positions.scalar_type()),
              "positions must be a floating-point tensor, got ", positions.scalar_type());
  TORCH_CHECK(prefix_tokens >= 0, "prefix token count must be >= 0, got ", prefix_tokens);
  const auto non_finite = torch::nonzero(~torch::isfinite(positions));  // (count, 4)
  if (non_finite.size(0) > 0) {
    const auto* index = non_finite.data_ptr<int64_t>();  // the first offending (b, n, g, m)
    const std::vector<int64_t> first(index, index + 4);
    TORCH_CHECK(false, "positions must be finite, but ", non_finite.size(0),
                " values are NaN or infinite, the first at index ", c10::IntArrayRef(first), ": ",
                positions[first[0]][first[1]][first[2]][first[3]].item<double>());
  }
  return TokenLayout(TokenGrid{0, 0, prefix_tokens}, std::move(positions));
}

TokenLayout TokenLayout::of_grids(std::vector<TokenGrid> grids) {
  TORCH_CHECK(!grids.empty(), "a batch of grids needs at least one image");
  int64_t largest = 0;
  bool all_equal = true;
  for (size_t b = 0; b < grids.size(); ++b) {
    grids[b].validate();
    TORCH_CHECK(grids[b].prefix_tokens == grids[0].prefix_tokens, "every image of a batch must "
                "have the same prefix tokens (class token or none): image 0 has ",
                grids[0].prefix_tokens, ", image ", b, " has ", grids[b].prefix_tokens);
    largest = std::max(largest, grids[b].grid_tokens());
    all_equal = all_equal && grids[b] == grids[0];
  }
  if (all_equal)
    return TokenLayout(grids[0]);
  TokenLayout layout(TokenGrid{0, 0, grids[0].prefix_tokens}, torch::Tensor());
  layout.grids_ = std::move(grids);
  layout.largest_grid_tokens_ = largest;
  return layout;
}

const TokenGrid& TokenLayout::grid() const {
  TORCH_CHECK(!positions_.defined(), "this token layout holds explicit positions, not a grid");
  TORCH_CHECK(is_grid(), "this token layout is ", describe(), ", not a single grid");
  return grid_;
}

const std::vector<TokenGrid>& TokenLayout::grids() const {
  TORCH_CHECK(is_grid_batch(), "this token layout (", describe(), ") is not a batch of grids");
  return grids_;
}

std::vector<TokenLayout::GridGroup> TokenLayout::images_by_grid(
    const torch::Device& device) const {
  std::vector<std::pair<TokenGrid, std::vector<int64_t>>> groups;
  const auto& images = grids();
  for (size_t b = 0; b < images.size(); ++b) {
    auto group = std::find_if(groups.begin(), groups.end(),
                              [&](const auto& entry) { return entry.first == images[b]; });
    if (group == groups.end())
      group = groups.insert(groups.end(), {images[b], {}});
    group->second.push_back(static_cast<int64_t>(b));
  }
  std::vector<GridGroup> indexed;
  for (const auto& [grid, members] : groups)
    indexed.push_back({grid, torch::tensor(members, torch::TensorOptions(torch::kLong))
                                 .to(device)});
  return indexed;
}

torch::Tensor TokenLayout::token_mask() const {
  const auto& images = grids();
  std::vector<int64_t> lengths;
  for (const auto& grid : images)
    lengths.push_back(grid.total_tokens());
  // (B, 1) < (1, N) -> (B, N)
  return torch::arange(total_tokens()).unsqueeze(0) < torch::tensor(lengths).unsqueeze(1);
}

const torch::Tensor& TokenLayout::positions() const {
  TORCH_CHECK(positions_.defined(), "this token layout is ",
              is_grid() ? "a grid (" + grid_.describe() + ")" : describe(),
              ", not explicit positions");
  return positions_;
}

int64_t TokenLayout::positioned_tokens() const {
  if (is_grid_batch())
    return largest_grid_tokens_;
  return is_grid() ? grid_.grid_tokens() : positions_.size(1);
}

void TokenLayout::check_tokens(const torch::Tensor& tokens, const std::string& who) const {
  TORCH_CHECK(tokens.defined(), who, ": tokens are an undefined tensor");
  TORCH_CHECK(tokens.dim() == 3, who, ": tokens must have shape (B, N, C), got shape ",
              tokens.sizes());
  TORCH_CHECK(tokens.size(1) == total_tokens(), who, ": got ", tokens.size(1),
              " tokens but the layout (", describe(), ") has ", total_tokens(),
              "; pass the grid the tokens were made on");
  if (positions_.defined()) {
    TORCH_CHECK(positions_.size(0) == tokens.size(0), who, ": tokens have batch size ",
                tokens.size(0), " but positions have batch size ", positions_.size(0));
  }
  if (is_grid_batch()) {
    TORCH_CHECK(static_cast<int64_t>(grids_.size()) == tokens.size(0), who,
                ": tokens have batch size ", tokens.size(0), " but the layout has ",
                grids_.size(), " images' grids");
  }
}

std::string TokenLayout::describe() const {
  if (is_grid())
    return grid_.describe();
  if (is_grid_batch()) {
    std::string sizes;
    for (size_t b = 0; b < grids_.size() && b < 4; ++b)
      sizes += c10::str(b == 0 ? "" : ", ", grids_[b].height, "x", grids_[b].width);
    return c10::str("a batch of ", grids_.size(), " grids (", sizes,
                    grids_.size() > 4 ? ", ..." : "", ") + ", prefix_tokens(), " prefix token",
                    prefix_tokens() == 1 ? "" : "s", ", padded to ", total_tokens(), " tokens");
  }
  return c10::str("explicit positions of shape ", positions_.sizes(), " + ", prefix_tokens(),
                  " prefix token", prefix_tokens() == 1 ? "" : "s");
}

}  // namespace posenc
