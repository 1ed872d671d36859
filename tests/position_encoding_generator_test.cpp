// PEG (CPVT): a depthwise convolution over the token grid added to the tokens, with the
// border behaviour that gives it absolute position.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "posenc/encoding_registry.h"
#include "support/test_encodings.h"

namespace posenc {
namespace {

using testing::expect_error_containing;
using testing::parameter;
namespace F = torch::nn::functional;

constexpr int64_t kPegChannels = 6;

PositionalEncoding make_peg(const std::string& spec, TokenGrid trained = {8, 8, 1}) {
  torch::manual_seed(11);
  auto peg = make_encoding(spec, {kPegChannels, trained});
  torch::NoGradGuard no_grad;
  parameter(peg, "bias").normal_();  // a non-zero bias, so the tests see it
  return peg;
}

// The grid part of tokens (B, prefix + H*W, C) as an image (B, C, H, W), contiguous.
torch::Tensor as_image(const torch::Tensor& tokens, const TokenGrid& grid) {
  return tokens.narrow(1, grid.prefix_tokens, grid.grid_tokens())
      .reshape({tokens.size(0), grid.height, grid.width, tokens.size(2)})
      .permute({0, 3, 1, 2})
      .contiguous();
}

TEST(PositionEncodingGenerator, EqualsDepthwiseConv2dWithZeroPaddingPlusResidual) {
  for (int64_t k : {1, 3, 5, 7}) {
    for (const TokenGrid grid : {TokenGrid{5, 8, 1}, TokenGrid{1, 1, 0}, TokenGrid{3, 2, 1}}) {
      auto peg = make_peg("peg:k=" + std::to_string(k));
      auto tokens = testing::random_tokens(2, grid, kPegChannels);
      auto image = as_image(tokens, grid);
      auto reference =
          image +
          F::conv2d(
              image, parameter(peg, "weight"),
              F::Conv2dFuncOptions().bias(parameter(peg, "bias")).padding(k / 2).groups(kPegChannels));
      auto out = peg->forward(tokens, grid);
      EXPECT_TRUE(torch::allclose(as_image(out, grid), reference, 1e-5, 1e-5))
          << "k=" << k << " " << grid.describe();
    }
  }
}

TEST(PositionEncodingGenerator, LeavesPrefixTokensUntouched) {
  const TokenGrid grid{4, 5, 2};
  auto tokens = testing::random_tokens(3, grid, kPegChannels);
  auto out = make_peg("peg")->forward(tokens, grid);
  EXPECT_TRUE(torch::equal(out.narrow(1, 0, 2), tokens.narrow(1, 0, 2)));
  EXPECT_FALSE(torch::allclose(out.narrow(1, 2, 20), tokens.narrow(1, 2, 20)));
}

// Content moved by (dy, dx) gives the output moved by (dy, dx) wherever neither the original nor
// the moved receptive field reaches the border.
TEST(PositionEncodingGenerator, IsTranslationEquivariantAwayFromTheBorder) {
  const TokenGrid grid{12, 13, 0};
  const int64_t dy = 2, dx = 1, margin = 1;  // k = 3
  auto peg = make_peg("peg");
  auto image = torch::randn({1, kPegChannels, 12, 13});
  auto moved = torch::roll(image, {dy, dx}, {2, 3});
  auto to_tokens = [](const torch::Tensor& x) {
    return x.permute({0, 2, 3, 1}).reshape({1, -1, kPegChannels});
  };
  auto out = as_image(peg->forward(to_tokens(image), grid), grid);
  auto out_moved = as_image(peg->forward(to_tokens(moved), grid), grid);
  auto interior =
      out.narrow(2, margin, 12 - 2 * margin - dy).narrow(3, margin, 13 - 2 * margin - dx);
  auto interior_moved = out_moved.narrow(2, margin + dy, 12 - 2 * margin - dy)
                            .narrow(3, margin + dx, 13 - 2 * margin - dx);
  EXPECT_TRUE(torch::allclose(interior, interior_moved, 1e-5, 1e-5));
}

// On a constant input every token is the same, so any difference in the output comes from where
// the token sits: zero padding reveals the border, circular and replicate padding do not.
TEST(PositionEncodingGenerator, ZeroPaddingRevealsTheBorderCircularAndReplicateDoNot) {
  const TokenGrid grid{6, 7, 1};
  auto constant = torch::ones({1, grid.total_tokens(), kPegChannels});
  auto corner_vs_centre = [&](const std::string& spec) {
    auto out = as_image(make_peg(spec)->forward(constant, grid), grid);
    return (out.select(2, 0).select(2, 0) - out.select(2, 3).select(2, 3))
        .abs()
        .max()
        .item<float>();
  };
  EXPECT_GT(corner_vs_centre("peg:padding=zeros"), 1e-3);
  EXPECT_LT(corner_vs_centre("peg:padding=circular"), 1e-6);
  EXPECT_LT(corner_vs_centre("peg:padding=replicate"), 1e-6);
}

TEST(PositionEncodingGenerator, CircularPaddingIsEquivariantToCyclicShiftsEverywhere) {
  for (const TokenGrid grid : {TokenGrid{5, 6, 1}, TokenGrid{1, 1, 1}, TokenGrid{2, 3, 0}}) {
    auto peg = make_peg("peg:padding=circular,k=5");
    auto tokens = testing::random_tokens(2, grid, kPegChannels);
    auto image = as_image(tokens, grid);
    auto shifted_image = torch::roll(image, {1, 2}, {2, 3});
    auto shifted = tokens.clone();
    shifted.narrow(1, grid.prefix_tokens, grid.grid_tokens())
        .copy_(shifted_image.permute({0, 2, 3, 1}).reshape({2, -1, kPegChannels}));
    auto expected = torch::roll(as_image(peg->forward(tokens, grid), grid), {1, 2}, {2, 3});
    EXPECT_TRUE(torch::allclose(as_image(peg->forward(shifted, grid), grid), expected, 1e-5, 1e-5))
        << grid.describe();
  }
}

TEST(PositionEncodingGenerator, InitialisesAsTheOfficialCode) {
  auto peg = make_encoding("peg:k=3", {512, {4, 4, 1}});
  auto weight = parameter(peg, "weight");
  EXPECT_EQ(weight.sizes(), (std::vector<int64_t>{512, 1, 3, 3}));
  EXPECT_NEAR(weight.std().item<double>(), std::sqrt(2.0 / 9.0), 0.02);
  EXPECT_TRUE(torch::equal(parameter(peg, "bias"), torch::zeros({512})));
  EXPECT_EQ(make_encoding("peg:bias=false", {8, {4, 4, 1}})->named_parameters().size(), 1u);
}

TEST(PositionEncodingGenerator, RejectsEvenKernelsAndNonGridLayouts) {
  expect_error_containing([] { make_peg("peg:k=4"); }, {"odd", "k = 4"});
  expect_error_containing([] { make_peg("peg:k=0"); }, {"k = 0"});
  expect_error_containing([] { make_peg("peg:padding=reflect"); },
                          {"zeros, circular, replicate", "reflect"});
}

}  // namespace
}  // namespace posenc
