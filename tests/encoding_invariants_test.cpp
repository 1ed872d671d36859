// Properties every registered encoding must have, checked for each one automatically: a new
// encoding gets this suite by being registered.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "posenc/encoding_registry.h"
#include "support/gradient_check.h"
#include "support/test_encodings.h"

namespace posenc {
namespace {

using testing::expect_error_containing;
using testing::random_tokens;

constexpr int64_t kChannels = 16;  // divisible by 4 (sincos2d) and small enough for grad checks

std::vector<std::string> registered_names() {
  std::vector<std::string> names;
  for (const auto& definition : registered_encodings())
    names.push_back(definition.name);
  return names;
}

class EveryEncoding : public ::testing::TestWithParam<std::string> {
 protected:
  PositionalEncoding make(const TokenGrid& trained_grid) const {
    torch::manual_seed(7);
    return make_encoding(nlohmann::json{{"type", GetParam()}}, {kChannels, trained_grid});
  }
};

TEST_P(EveryEncoding, KeepsShapeDtypeAndFinitenessOnAnyGridWithAndWithoutPrefix) {
  for (int64_t prefix : {0, 1}) {
    for (auto dtype : {torch::kFloat32, torch::kFloat64}) {
      auto encoding = make({7, 7, prefix});
      encoding->to(dtype);
      for (auto [height, width] :
           std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {7, 7}, {3, 5}, {6, 2}, {9, 11}}) {
        const TokenGrid grid{height, width, prefix};
        auto tokens = random_tokens(3, grid, kChannels, dtype);
        auto out = encoding->forward(tokens, grid);
        EXPECT_EQ(out.sizes(), tokens.sizes()) << grid.describe();
        EXPECT_EQ(out.scalar_type(), dtype) << grid.describe();
        EXPECT_TRUE(torch::isfinite(out).all().item<bool>()) << grid.describe();
      }
    }
  }
}

TEST_P(EveryEncoding, IsDeterministicAndTreatsBatchElementsIndependently) {
  const TokenGrid grid{4, 6, 1};
  auto encoding = make({7, 7, 1});
  auto tokens = random_tokens(3, grid, kChannels);
  auto out = encoding->forward(tokens, grid);
  EXPECT_TRUE(torch::equal(out, encoding->forward(tokens, grid)));
  for (int64_t b = 0; b < 3; ++b) {
    auto single = encoding->forward(tokens.narrow(0, b, 1), grid);
    EXPECT_TRUE(torch::allclose(single, out.narrow(0, b, 1), 1e-6, 1e-6)) << "batch element " << b;
  }
}

TEST_P(EveryEncoding, InferenceResultsFollowEveryParameterChange) {
  // Additive encodings cache their grid PE when autograd is off; the cache must never serve a
  // stale PE: after in-place parameter updates, a dtype change or a write into the returned PE.
  const TokenGrid grid{5, 4, 1};
  auto encoding = make({7, 7, 1});
  auto tokens = random_tokens(2, grid, kChannels);
  auto fresh = [&] { return encoding->forward(tokens, grid).detach(); };  // grad mode: no cache
  torch::NoGradGuard no_grad;
  auto first = encoding->forward(tokens, grid);
  EXPECT_TRUE(torch::equal(first, encoding->forward(tokens, grid)));
  for (auto& parameter : encoding->parameters())
    parameter.add_(torch::randn_like(parameter) * 0.5);
  {
    torch::AutoGradMode grad_on(true);
    EXPECT_TRUE(torch::allclose(encoding->forward(tokens, grid), fresh()));
  }
  auto after_update = encoding->forward(tokens, grid);
  {
    torch::AutoGradMode grad_on(true);
    EXPECT_TRUE(torch::equal(after_update, fresh())) << "stale PE after an in-place update";
  }
  if (auto* additive = dynamic_cast<AdditiveEncodingImpl*>(encoding.get())) {
    auto pe = additive->embedding(grid, tokens.options());
    EXPECT_EQ(pe.data_ptr(), additive->embedding(grid, tokens.options()).data_ptr())
        << "the grid PE was recomputed although nothing changed";
    pe.add_(1.0);
    EXPECT_TRUE(torch::equal(encoding->forward(tokens, grid), after_update))
        << "a write into the returned PE leaked into the next forward";
    // at the trained grid too, where a table is its own PE: the write must not reach the weights
    const TokenGrid trained{7, 7, 1};
    std::vector<torch::Tensor> weights;
    for (const auto& parameter : encoding->parameters())
      weights.push_back(parameter.clone());
    auto trained_tokens = random_tokens(2, trained, kChannels);
    auto before = encoding->forward(trained_tokens, trained);
    additive->embedding(trained, tokens.options()).add_(1.0);
    const auto parameters = encoding->parameters();
    for (size_t i = 0; i < parameters.size(); ++i)
      EXPECT_TRUE(torch::equal(parameters[i], weights[i]))
          << "a write into the trained grid's PE changed parameter " << i;
    EXPECT_TRUE(torch::equal(encoding->forward(trained_tokens, trained), before))
        << "a write into the trained grid's PE leaked into the next forward";
  }
  encoding->to(torch::kFloat64);
  auto in_double = encoding->forward(tokens.to(torch::kFloat64), grid);
  EXPECT_EQ(in_double.scalar_type(), torch::kFloat64);
  EXPECT_TRUE(torch::allclose(in_double.to(torch::kFloat32), after_update, 1e-5, 1e-5));
}

TEST_P(EveryEncoding, GradientsMatchCentralDifferencesInDouble) {
  // At the trained grid and at another one (exercises resampling of learned tables).
  for (const TokenGrid grid : {TokenGrid{3, 3, 1}, TokenGrid{2, 4, 1}}) {
    auto encoding = make({3, 3, 1});
    encoding->to(torch::kFloat64);
    auto tokens = random_tokens(2, grid, kChannels, torch::kFloat64).requires_grad_(true);
    std::vector<torch::Tensor> inputs = {tokens};
    std::vector<std::string> names = {"tokens"};
    for (const auto& [name, value] : testing::trainable_parameters(encoding)) {
      inputs.push_back(value);
      names.push_back(name);
    }
    const auto mismatches = testing::gradient_mismatches(
        [&] { return encoding->forward(tokens, grid); }, inputs, names);
    EXPECT_TRUE(mismatches.empty()) << "on " << grid.describe() << ":\n" << mismatches;
  }
}

TEST_P(EveryEncoding, ConfigRebuildsAnIdenticalEncoding) {
  auto encoding = make({5, 5, 1});
  const auto config = encoding->config();
  EXPECT_EQ(config.at("type"), GetParam());
  for (const auto& option : find_encoding(GetParam()).options) {
    EXPECT_TRUE(config.contains(option.key)) << "config lacks option " << option.key;
  }
  torch::manual_seed(7);
  auto rebuilt = make_encoding(config, {kChannels, {5, 5, 1}});
  auto tokens = random_tokens(2, {5, 5, 1}, kChannels);
  EXPECT_TRUE(torch::equal(encoding->forward(tokens, TokenGrid{5, 5, 1}),
                           rebuilt->forward(tokens, TokenGrid{5, 5, 1})));
}

TEST_P(EveryEncoding, RejectsTokensThatDoNotFitTheLayout) {
  auto encoding = make({4, 4, 1});
  expect_error_containing(
      [&] {
        encoding->forward(torch::randn({2, 16, kChannels}), TokenGrid{4, 4, 1});
      },
      {"got 16 tokens", "17"});
  expect_error_containing(
      [&] {
        encoding->forward(torch::randn({2, 17, kChannels + 4}), TokenGrid{4, 4, 1});
      },
      {"20 channels", "C = 16"});
  expect_error_containing(
      [&] {
        encoding->forward(torch::randn({17, kChannels}), TokenGrid{4, 4, 1});
      },
      {"(B, N, C)"});
}

TEST_P(EveryEncoding, FollowsTheTokenDtypeOrRejectsOneThatDiffersFromItsParameters) {
  auto encoding = make({4, 4, 1});
  auto doubles = random_tokens(1, {4, 4, 1}, kChannels, torch::kFloat64);
  if (encoding->parameters().empty()) {
    EXPECT_EQ(encoding->forward(doubles, TokenGrid{4, 4, 1}).scalar_type(), torch::kFloat64);
  } else {
    expect_error_containing(
        [&] {
          encoding->forward(doubles, TokenGrid{4, 4, 1});
        },
        {"Double", "Float", "->to("});
  }
}

TEST_P(EveryEncoding, RefusesExplicitPositionsItCannotReadOrThatMissTheTokens) {
  auto encoding = make({4, 4, 0});
  auto layout = TokenLayout::at_positions(torch::rand({2, 5, 1, 2}));
  auto three_sets = torch::randn({3, 5, kChannels});  // batch 3, positions for batch 2
  if (encoding->accepts_positions()) {
    expect_error_containing([&] { encoding->forward(three_sets, layout); },
                            {"batch size 3", "batch size 2"});
  } else {
    expect_error_containing([&] { encoding->forward(three_sets.narrow(0, 0, 2), layout); },
                            {"token grids only"});
  }
}

INSTANTIATE_TEST_SUITE_P(Registry, EveryEncoding, ::testing::ValuesIn(registered_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace posenc
