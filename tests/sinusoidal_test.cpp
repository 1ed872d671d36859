// Fixed sinusoidal encodings against their closed forms.
#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "posenc/encoding_registry.h"
#include "support/test_encodings.h"

namespace posenc {
namespace {

using testing::expect_error_containing;

// The embedding an additive encoding adds on a layout: forward on zero tokens.
torch::Tensor embedding_of(const std::string& spec, int64_t channels, const TokenLayout& layout) {
  auto encoding = make_encoding(spec, {channels, {7, 7, 1}});
  const int64_t batch = layout.is_grid() ? 1 : layout.positions().size(0);
  return encoding->forward(
      torch::zeros({batch, layout.total_tokens(), channels}, torch::kFloat64).to(torch::kFloat32),
      layout);
}

// sin or cos of value * 10000^(-k / K) for channel c of a [sin K | cos K] block.
double block_value(double value, int64_t c, int64_t block_channels) {
  const int64_t frequencies = block_channels / 2;
  const int64_t k = c % frequencies;
  const double angle = value * std::pow(10000.0, -static_cast<double>(k) / frequencies);
  return c < frequencies ? std::sin(angle) : std::cos(angle);
}

TEST(SinCos2d, MatchesTheClosedFormRowsThenColumns) {
  const TokenGrid grid{3, 5, 1};
  const int64_t channels = 16;
  auto pe = embedding_of("sincos2d", channels, grid).squeeze(0);
  EXPECT_TRUE(torch::equal(pe[0], torch::zeros({channels}))) << "prefix token gets no encoding";
  for (int64_t i = 0; i < 3; ++i) {
    for (int64_t j = 0; j < 5; ++j) {
      for (int64_t c = 0; c < channels; ++c) {
        const double expected = c < channels / 2 ? block_value(i, c, channels / 2)
                                                 : block_value(j, c - channels / 2, channels / 2);
        EXPECT_NEAR(pe[1 + i * 5 + j][c].item<double>(), expected, 1e-6)
            << i << "," << j << "," << c;
      }
    }
  }
}

TEST(SinCos2d, ExplicitIntegerPositionsGiveTheGridEncoding) {
  const TokenGrid grid{4, 3, 0};
  auto mesh = torch::meshgrid({torch::arange(4.0), torch::arange(3.0)}, "ij");
  auto positions =
      torch::stack({mesh[0].reshape(-1), mesh[1].reshape(-1)}, 1).reshape({1, 12, 1, 2});
  EXPECT_TRUE(torch::allclose(
      embedding_of("sincos2d", 8, grid),
      embedding_of("sincos2d", 8, TokenLayout::at_positions(positions.to(torch::kFloat32))), 1e-6,
      1e-6));
}

TEST(SinCos1d, MatchesTheClosedFormOfTheFlattenedIndex) {
  const TokenGrid grid{2, 3, 1};
  const int64_t channels = 6;
  auto pe = embedding_of("sincos1d", channels, grid).squeeze(0);
  EXPECT_TRUE(torch::equal(pe[0], torch::zeros({channels})));
  for (int64_t index = 0; index < 6; ++index) {
    for (int64_t c = 0; c < channels; ++c) {
      EXPECT_NEAR(pe[1 + index][c].item<double>(), block_value(index, c, channels), 1e-6);
    }
  }
  auto positions = torch::arange(6.0).to(torch::kFloat32).reshape({1, 6, 1, 1});
  EXPECT_TRUE(torch::allclose(
      pe.narrow(0, 1, 6),
      embedding_of("sincos1d", channels, TokenLayout::at_positions(positions)).squeeze(0), 1e-6,
      1e-6));
}

TEST(Sinusoidal, RejectsChannelCountsThatCannotBeSplit) {
  expect_error_containing(
      [] {
        make_encoding("sincos2d", {6, {4, 4, 1}});
      },
      {"divisible by 4", "C = 6"});
  expect_error_containing([] { make_encoding("sincos1d", {5, {4, 4, 1}}); }, {"even", "C = 5"});
  expect_error_containing(
      [] {
        make_encoding("sincos1d:temperature=0.5", {4, {4, 4, 1}});
      },
      {"temperature"});
}

}  // namespace
}  // namespace posenc
