// Token layouts: grids and explicit positions, and the checks that keep tokens and layout in step.
#include <limits>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "posenc/token_layout.h"
#include "support/test_encodings.h"

namespace posenc {
namespace {

using testing::expect_error_containing;

TEST(TokenLayout, CountsPrefixAndPositionedTokens) {
  const TokenLayout grid(TokenGrid{3, 5, 1});
  EXPECT_TRUE(grid.is_grid());
  EXPECT_EQ(grid.positioned_tokens(), 15);
  EXPECT_EQ(grid.total_tokens(), 16);
  const auto points = TokenLayout::at_positions(torch::rand({2, 9, 2, 2}), 1);
  EXPECT_FALSE(points.is_grid());
  EXPECT_EQ(points.positioned_tokens(), 9);
  EXPECT_EQ(points.total_tokens(), 10);
  EXPECT_NO_THROW(points.check_tokens(torch::zeros({2, 10, 4}), "test"));
}

TEST(TokenLayout, RejectsNonFiniteOrMisshapenPositions) {
  auto positions = torch::rand({1, 4, 1, 2});
  positions[0][2][0][1] = std::numeric_limits<float>::quiet_NaN();
  expect_error_containing([&] { TokenLayout::at_positions(positions); },
                          {"NaN or infinite", "[0, 2, 0, 1]", "nan"});
  positions[0][2][0][1] = std::numeric_limits<float>::infinity();
  expect_error_containing([&] { TokenLayout::at_positions(positions); },
                          {"1 values are NaN or infinite", "inf"});
  expect_error_containing(
      [] {
        TokenLayout::at_positions(torch::rand({4, 2}));
      },
      {"(B, N, G, M)", "[4, 2]"});
  expect_error_containing(
      [] {
        TokenLayout::at_positions(torch::zeros({1, 0, 1, 2}));
      },
      {"at least one token"});
  expect_error_containing(
      [] {
        TokenLayout::at_positions(torch::zeros({1, 3, 1, 2}, torch::kLong));
      },
      {"floating-point"});
  expect_error_containing(
      [] {
        TokenLayout::at_positions(torch::zeros({1, 3, 1, 2}), -1);
      },
      {">= 0", "-1"});
}

TEST(TokenLayout, RejectsTokensThatDoNotMatch) {
  const TokenLayout grid(TokenGrid{2, 2, 1});
  expect_error_containing(
      [&] {
        grid.check_tokens(torch::zeros({1, 4, 8}), "peg");
      },
      {"peg", "got 4 tokens", "has 5"});
  const auto points = TokenLayout::at_positions(torch::rand({2, 3, 1, 2}));
  expect_error_containing(
      [&] {
        points.check_tokens(torch::zeros({3, 3, 8}), "lff");
      },
      {"batch size 3", "batch size 2"});
  expect_error_containing([&] { points.grid(); }, {"explicit positions, not a grid"});
  expect_error_containing([&] { grid.positions(); }, {"is a grid"});
}

TEST(TokenGrid, RejectsNonPositiveSizes) {
  expect_error_containing([] { TokenLayout(TokenGrid{0, 3, 0}); }, {"0x3"});
  expect_error_containing([] { TokenLayout(TokenGrid{3, -1, 0}); }, {"3x-1"});
}

}  // namespace
}  // namespace posenc
