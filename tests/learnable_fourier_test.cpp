// Learnable Fourier Features: the properties the paper claims and Algorithm 1 implies.
#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "posenc/kernels/fourier_features.h"
#include "posenc/encoding_registry.h"
#include "support/test_encodings.h"

namespace posenc {
namespace {

using testing::expect_error_containing;
using testing::parameter;

PositionalEncoding make_lff(const std::string& spec, int64_t channels = 16,
                            TokenGrid trained = {7, 7, 0}) {
  torch::manual_seed(3);
  return make_encoding(spec, {channels, trained});
}

double expected_kernel(double distance, double length_scale) {
  return std::exp(-distance * distance / (2 * length_scale * length_scale));
}

// r_x . r_y = (1/F) sum over F/2 frequencies of cos((x - y) . w_k): its expectation is half the
// Gaussian kernel, and r_x . r_x = 1/2 exactly, so 2 r_x . r_y estimates
// exp(-||x - y||^2 / (2 s^2)), s = gamma (paper) or gamma^2 (ports, std gamma^-2).
TEST(LearnableFourier, FeatureDotProductsEstimateTheGaussianKernelOfL2Distance) {
  constexpr double kGamma = 2.0;
  // F/2 = 8192 frequencies: each estimate has std <= sqrt(1/8192) ~ 0.011; tolerance 0.04.
  constexpr double kTolerance = 0.04;
  for (const auto& [init, length_scale] :
       std::vector<std::pair<std::string, double>>{{"paper", kGamma}, {"port", kGamma * kGamma}}) {
    auto encoding = make_lff("lff:F=16384,gamma=2,learn_fourier=false,init=" + init);
    auto wr = parameter(encoding, "Wr.weight").detach();
    EXPECT_FALSE(parameter(encoding, "Wr.weight").requires_grad());
    auto origin = torch::tensor({{0.3, -1.2}}, torch::kFloat32);
    for (double distance : {0.0, 0.5, 1.0, 2.0, 3.0, 5.0}) {
      // points at the given distance in two directions
      for (auto direction : {torch::tensor({{1.0, 0.0}}), torch::tensor({{0.6, -0.8}})}) {
        auto other = origin + distance * direction.to(torch::kFloat32);
        auto dot =
            (fourier_features(origin, wr) * fourier_features(other, wr)).sum().item<double>();
        EXPECT_NEAR(2 * dot, expected_kernel(distance, length_scale), kTolerance)
            << "init=" << init << " distance " << distance;
      }
    }
  }
}

TEST(LearnableFourier, FourierFeaturesFollowAlgorithmOneAndFeedTheProjection) {
  auto wr = torch::randn({3, 2});
  auto x = torch::randn({5, 2});
  auto r = fourier_features(x, wr).to(torch::kDouble);  // (5, F = 6)
  // The exact features of these float32 inputs, in double. The kernel forms x W_r^T with FMAs in
  // its own order and MKL in another, so two float32 results differ by a few rounding errors of
  // the angle (|angle| < 10 here: about 1e-6); allclose's default atol of 1e-8 does not allow that
  // where a sine crosses zero, and fails on some CPUs. A wrong formula is off by 0.1 or more.
  constexpr double kFloatRounding = 2e-6;
  auto angles = torch::matmul(x.to(torch::kDouble), wr.to(torch::kDouble).t());
  EXPECT_TRUE(torch::allclose(r.narrow(1, 0, 3), torch::cos(angles) / std::sqrt(6.0), 0.0,
                              kFloatRounding));
  EXPECT_TRUE(torch::allclose(r.narrow(1, 3, 3), torch::sin(angles) / std::sqrt(6.0), 0.0,
                              kFloatRounding));
  EXPECT_TRUE(torch::allclose((r * r).sum(1), torch::full({5}, 0.5, torch::kDouble), 0.0,
                              kFloatRounding));

  // The encoding's fourier_linear variant is exactly proj(fourier_features(x, W_r)).
  auto encoding = make_lff("lff:F=6,variant=fourier_linear", 4);
  auto layout = TokenLayout::at_positions(x.reshape({1, 5, 1, 2}));
  auto pe = encoding->forward(torch::zeros({1, 5, 4}), layout).squeeze(0);
  auto expected = torch::addmm(parameter(encoding, "proj.bias"),
                               fourier_features(x, parameter(encoding, "Wr.weight")),
                               parameter(encoding, "proj.weight").t());
  EXPECT_TRUE(torch::allclose(pe, expected, 1e-6, 1e-6));
}

TEST(LearnableFourier, InitialisesWrWithTheStandardDeviationOfTheChosenConvention) {
  for (const auto& [init, expected_std] :
       std::vector<std::pair<std::string, double>>{{"paper", 0.25}, {"port", 1.0 / 16}}) {
    auto wr = parameter(make_lff("lff:F=8192,gamma=4,init=" + init), "Wr.weight");
    EXPECT_NEAR(wr.std().item<double>(), expected_std, 0.03 * expected_std) << init;
    EXPECT_NEAR(wr.mean().item<double>(), 0.0, 0.05 * expected_std) << init;
  }
}

TEST(LearnableFourier, IsFiniteAndDeterministicAtUnseenPositionsAndGridSizes) {
  auto encoding = make_lff("lff");
  auto again = make_lff("lff");
  auto positions = torch::tensor({-1000.0, 0.0, 3.7, 250.25, 1e4}, torch::kFloat32)
                       .reshape({1, 5, 1, 1})
                       .expand({2, 5, 1, 2})
                       .contiguous();
  auto layout = TokenLayout::at_positions(positions);
  auto tokens = torch::zeros({2, 5, 16});
  auto out = encoding->forward(tokens, layout);
  EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
  EXPECT_TRUE(torch::equal(out, again->forward(tokens, layout)));
  const TokenGrid unseen{40, 3, 1};
  auto grid_out = encoding->forward(torch::zeros({1, unseen.total_tokens(), 16}), unseen);
  EXPECT_TRUE(torch::isfinite(grid_out).all().item<bool>());
  EXPECT_TRUE(
      torch::equal(grid_out, again->forward(torch::zeros({1, unseen.total_tokens(), 16}), unseen)));
}

TEST(LearnableFourier, ParameterCountDoesNotDependOnTheNumberOfPositions) {
  auto count = [](const PositionalEncoding& encoding) {
    int64_t total = 0;
    for (const auto& p : encoding->parameters())
      total += p.numel();
    return total;
  };
  const auto small = count(make_lff("lff:F=32,H=8", 16, {2, 2, 0}));
  EXPECT_EQ(small, count(make_lff("lff:F=32,H=8", 16, {64, 48, 1})));
  // W_r (F/2 x M) + W_1, B_1 (F x H + H) + W_2, B_2 (H x D + D)
  EXPECT_EQ(small, 16 * 2 + 32 * 8 + 8 + 8 * 16 + 16);
}

TEST(LearnableFourier, GroupOutputsAreThePerGroupEncodingsConcatenated) {
  // G = 2 groups of M = 2 (a box as two corners) into C = 16: each group gives D/G = 8 channels
  // from the same W_r and MLP.
  auto grouped = make_lff("lff:F=32,H=8,G=2,M=2", 16);
  auto single = make_lff("lff:F=32,H=8,G=1,M=2", 8);
  {
    torch::NoGradGuard no_grad;
    auto target = single->named_parameters();
    for (const auto& item : grouped->named_parameters())
      target[item.key()].copy_(item.value());
  }
  auto boxes = torch::randn({3, 5, 2, 2});
  auto out = grouped->forward(torch::zeros({3, 5, 16}), TokenLayout::at_positions(boxes));
  auto first = single->forward(torch::zeros({3, 5, 8}),
                               TokenLayout::at_positions(boxes.narrow(2, 0, 1).contiguous()));
  auto second = single->forward(torch::zeros({3, 5, 8}),
                                TokenLayout::at_positions(boxes.narrow(2, 1, 1).contiguous()));
  EXPECT_TRUE(torch::allclose(out, torch::cat({first, second}, -1), 1e-6, 1e-6));
  // the groups really differ, so the test could tell them apart
  EXPECT_FALSE(torch::allclose(first, second, 1e-3, 1e-3));
}

TEST(LearnableFourier, GridPositionsArePatchCentresInPatchUnitsOrNormalised) {
  const TokenGrid grid{3, 4, 1};
  for (const std::string coords : {"index", "normalized"}) {
    auto encoding = make_lff("lff:coords=" + coords);
    auto rows = torch::arange(3).to(torch::kFloat32) + 0.5;
    auto columns = torch::arange(4).to(torch::kFloat32) + 0.5;
    if (coords == "normalized") {
      rows = rows / 3;
      columns = columns / 4;
    }
    auto mesh = torch::meshgrid({rows, columns}, "ij");
    auto centres = torch::stack({mesh[0].reshape(-1), mesh[1].reshape(-1)}, 1);  // (12, 2)
    auto tokens = torch::randn({1, grid.total_tokens(), 16});
    auto on_grid = encoding->forward(tokens, grid);
    auto at_positions =
        encoding->forward(tokens, TokenLayout::at_positions(centres.reshape({1, 12, 1, 2}), 1));
    EXPECT_TRUE(torch::allclose(on_grid, at_positions, 1e-6, 1e-6)) << coords;
    // the class token gets no positional encoding
    EXPECT_TRUE(torch::equal(on_grid.narrow(1, 0, 1), tokens.narrow(1, 0, 1))) << coords;
  }
}

TEST(LearnableFourier, AblationVariantsHaveTheirOwnParametersAndFrozenWrGetsNoGradient) {
  auto names = [](const PositionalEncoding& encoding) {
    std::vector<std::string> keys;
    for (const auto& item : encoding->named_parameters())
      keys.push_back(item.key());
    return keys;
  };
  using Names = std::vector<std::string>;
  EXPECT_EQ(names(make_lff("lff")),
            (Names{"Wr.weight", "mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"}));
  EXPECT_EQ(names(make_lff("lff:variant=fourier_linear")),
            (Names{"Wr.weight", "proj.weight", "proj.bias"}));
  EXPECT_EQ(names(make_lff("lff:variant=mlp")),
            (Names{"mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"}));
  EXPECT_EQ(parameter(make_lff("lff:variant=mlp"), "mlp.0.weight").size(1), 2)
      << "the MLP-only variant reads raw (row, column) coordinates";

  auto frozen = make_lff("lff:learn_fourier=false");
  const TokenGrid grid{3, 3, 0};
  frozen->forward(torch::randn({1, 9, 16}), grid).sum().backward();
  EXPECT_FALSE(parameter(frozen, "Wr.weight").grad().defined());
  EXPECT_TRUE(parameter(frozen, "mlp.0.weight").grad().defined());
}

TEST(LearnableFourier, RejectsConfigurationsAndPositionsThatDoNotFit) {
  expect_error_containing([] { make_lff("lff:G=3", 16); }, {"divisible by G", "C = 16", "G = 3"});
  expect_error_containing([] { make_lff("lff:F=7"); }, {"even", "F = 7"});
  expect_error_containing([] { make_lff("lff:H=-2"); }, {"H = -2"});
  expect_error_containing([] { make_lff("lff:F=2000000000"); },
                          {"at most 65536", "F = 2000000000"});
  expect_error_containing([] { make_lff("lff:H=100000"); }, {"at most 65536", "H = 100000"});
  expect_error_containing([] { make_lff("lff:gamma=0"); }, {"gamma"});
  expect_error_containing([] { make_lff("lff:G=-1"); }, {"G = -1"});
  auto boxes = make_lff("lff:G=2,M=2");
  expect_error_containing(
      [&] {
        boxes->forward(torch::zeros({1, 4, 16}), TokenGrid{2, 2, 0});
      },
      {"G = 2", "image models take plain lff", "posenc train --task"});
  auto pixels = make_lff("lff");
  expect_error_containing(
      [&] {
        pixels->forward(torch::zeros({1, 4, 16}),
                        TokenLayout::at_positions(torch::zeros({1, 4, 1, 3})));
      },
      {"G=1, M=2", "[1, 4, 1, 3]"});
}

}  // namespace
}  // namespace posenc
