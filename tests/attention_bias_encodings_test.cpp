// What makes an attention-bias encoding, checked for every registered one: a logit term that
// depends only on the offset between two grid tokens, on grids of any shape; then relpos_bias's
// table (timm's layout, BEiT's class-token entries, resizing) and relpos_mlp's Swin-V2 formula,
// and their place in a VisionTransformer. (The invariant suite, encoding_invariants_test.cpp,
// covers shapes, dtypes, gradients in double and configs through forward().)
#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "posenc/encoding_registry.h"
#include "posenc/grid_table_resampling.h"
#include "posenc/interop/torch_save_files.h"
#include "posenc/models/set_transformer.h"
#include "posenc/models/vision_transformer.h"
#include "support/gradient_check.h"
#include "support/test_encodings.h"

namespace posenc {
namespace {

using testing::expect_error_containing;

constexpr int64_t kBiasChannels = 16;
constexpr int64_t kBiasHeads = 2;

std::vector<std::string> bias_specs() {
  std::vector<std::string> specs;
  for (const auto& definition : registered_encodings()) {
    auto encoding = make_encoding(nlohmann::json{{"type", definition.name}}, {8, {2, 2, 0}});
    if (encoding->kind() == EncodingKind::Bias)
      specs.push_back(definition.name);
  }
  specs.push_back("relpos_bias:prefix_entries=false,init=zeros");
  specs.push_back("relpos_mlp:normalize=grid");
  specs.push_back("relpos_mlp:mode=cr");
  return specs;
}

AttentionBiasEncodingImpl& as_bias(PositionalEncoding& encoding) {
  auto* bias = dynamic_cast<AttentionBiasEncodingImpl*>(encoding.get());
  EXPECT_NE(bias, nullptr);
  return *bias;
}

// The (dy, dx) of every (query, key) pair of a grid's tokens, as one integer each: (H*W, H*W)
torch::Tensor offset_ids(const TokenGrid& grid) {
  const auto rows = torch::arange(grid.height).repeat_interleave(grid.width);
  const auto columns = torch::arange(grid.width).repeat(grid.height);
  const auto dy = rows.unsqueeze(1) - rows.unsqueeze(0) + grid.height;
  const auto dx = columns.unsqueeze(1) - columns.unsqueeze(0) + grid.width;
  return dy * (4 * grid.width) + dx;
}

class EveryBiasEncoding : public ::testing::TestWithParam<std::string> {
 protected:
  PositionalEncoding make_bias(const TokenGrid& trained) const {
    torch::manual_seed(3);
    auto encoding = make_encoding(GetParam(), {kBiasChannels, trained, kBiasHeads});
    encoding->to(torch::kFloat64);
    for (auto& parameter : encoding->parameters()) {  // zeros-initialised tables too
      torch::NoGradGuard no_grad;
      parameter.add_(torch::randn_like(parameter) * 0.3);
    }
    return encoding;
  }
};

TEST_P(EveryBiasEncoding, DependsOnlyOnTheOffsetBetweenTwoGridTokensOnAnyGrid) {
  auto encoding = make_bias({4, 4, 1});
  for (const TokenGrid grid : {TokenGrid{4, 4, 1}, TokenGrid{3, 5, 1}, TokenGrid{6, 2, 0},
                               TokenGrid{1, 1, 1}, TokenGrid{5, 7, 1}}) {
    const auto bias = as_bias(encoding).attention_bias(grid, torch::kFloat64);
    const int64_t prefix = grid.prefix_tokens, positioned = grid.height * grid.width;
    ASSERT_EQ(bias.sizes(), (std::vector<int64_t>{kBiasHeads, prefix + positioned,
                                                  prefix + positioned}));
    // among grid tokens: the largest and smallest bias of each offset coincide
    const auto ids = offset_ids(grid).reshape(-1);
    const int64_t groups = ids.max().item<int64_t>() + 1;
    for (int64_t h = 0; h < kBiasHeads; ++h) {
      const auto values = bias[h].narrow(0, prefix, positioned).narrow(1, prefix, positioned)
                              .reshape(-1);
      const auto largest = torch::full({groups}, -1e9, torch::kFloat64)
                               .scatter_reduce(0, ids, values, "amax");
      const auto smallest = torch::full({groups}, 1e9, torch::kFloat64)
                                .scatter_reduce(0, ids, values, "amin");
      const auto used = torch::bincount(ids, {}, groups) > 0;
      EXPECT_LT((largest - smallest).masked_select(used).abs().max().item<double>(), 1e-12)
          << grid.describe();
      if (positioned > 1) {
        EXPECT_GT(values.max().item<double>() - values.min().item<double>(), 1e-6)
            << "no offset is told apart on " << grid.describe();
      }
    }
  }
}

TEST_P(EveryBiasEncoding, GradientsOfTheBiasMatchCentralDifferencesInDouble) {
  for (const TokenGrid grid : {TokenGrid{3, 3, 1}, TokenGrid{2, 4, 1}, TokenGrid{1, 1, 0}}) {
    auto encoding = make_bias({3, 3, 1});
    std::vector<torch::Tensor> inputs;
    std::vector<std::string> names;
    for (const auto& [name, value] : testing::trainable_parameters(encoding)) {
      inputs.push_back(value);
      names.push_back(name);
    }
    const auto mismatches = testing::gradient_mismatches(
        [&] { return as_bias(encoding).attention_bias(grid, torch::kFloat64); }, inputs, names);
    EXPECT_TRUE(mismatches.empty()) << "on " << grid.describe() << ":\n" << mismatches;
  }
}

INSTANTIATE_TEST_SUITE_P(Registry, EveryBiasEncoding, ::testing::ValuesIn(bias_specs()),
                         [](const auto& info) { return testing::spec_test_name(info.param); });

// timm's relative_position_index on a 2x3 grid: query (0, 0) and key (1, 2) are offset
// (-1, -2), row 0 of the (3 x 5)-row table; the reverse pair (1, 2), row 14, the last. With a
// class token, BEiT's entries: rows 15 (class to grid), 16 (grid to class), 17 (class to class).
TEST(RelposBias, ReadsTimmsTableLayoutWithBeitsClassTokenEntries) {
  torch::manual_seed(0);
  auto encoding = make_encoding("relpos_bias", {kBiasChannels, {2, 3, 1}, kBiasHeads});
  const auto table = encoding->named_parameters()["relative_position_bias_table"];
  ASSERT_EQ(table.sizes(), (std::vector<int64_t>{15 + 3, kBiasHeads}));
  const auto bias = as_bias(encoding).attention_bias({2, 3, 1}, torch::kFloat32);  // (2, 7, 7)
  EXPECT_TRUE(torch::equal(bias.select(1, 1).select(1, 1 + 5), table[0]));
  EXPECT_TRUE(torch::equal(bias.select(1, 1 + 5).select(1, 1), table[14]));
  EXPECT_TRUE(torch::equal(bias.select(1, 1 + 2).select(1, 1 + 2), table[7])) << "offset (0, 0)";
  EXPECT_TRUE(torch::equal(bias.select(1, 0).select(1, 4), table[15]));
  EXPECT_TRUE(torch::equal(bias.select(1, 4).select(1, 0), table[16]));
  EXPECT_TRUE(torch::equal(bias.select(1, 0).select(1, 0), table[17]));
  // without the entries, or trained without a class token: no bias there
  auto plain = make_encoding("relpos_bias:prefix_entries=false", {kBiasChannels, {2, 3, 1}, 2});
  EXPECT_EQ(plain->named_parameters()["relative_position_bias_table"].size(0), 15);
  const auto unbiased = as_bias(plain).attention_bias({2, 3, 1}, torch::kFloat32);
  EXPECT_EQ(unbiased.select(1, 0).abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(unbiased.select(2, 0).abs().sum().item<float>(), 0.0f);
  // init: Swin's std 0.02, or BEiT's zeros
  EXPECT_NEAR(table.std().item<double>(), 0.02, 0.012);
  auto zeros = make_encoding("relpos_bias:init=zeros", {kBiasChannels, {2, 3, 1}, 2});
  EXPECT_EQ(zeros->named_parameters()["relative_position_bias_table"].abs().sum().item<float>(), 0);
}

// At the trained grid resizing is the identity; resize=none reads a smaller grid's offsets from
// the table unchanged (the bias among a 3x3 grid equals that among any 3x3 block of the trained
// 5x5 grid) and refuses a larger one; bicubic follows timm's resize.
TEST(RelposBias, ResizesByBicubicInterpolationOrReadsSmallerGridsAsTrained) {
  torch::manual_seed(1);
  auto bicubic = make_encoding("relpos_bias:prefix_entries=false", {kBiasChannels, {5, 5, 0}, 2});
  auto as_is = make_encoding("relpos_bias:prefix_entries=false,resize=none",
                             {kBiasChannels, {5, 5, 0}, 2});
  torch::NoGradGuard no_grad;
  as_is->named_parameters()["relative_position_bias_table"].copy_(
      bicubic->named_parameters()["relative_position_bias_table"]);
  const auto trained = as_bias(bicubic).attention_bias({5, 5, 0}, torch::kFloat32);
  EXPECT_TRUE(torch::equal(trained, as_bias(as_is).attention_bias({5, 5, 0}, torch::kFloat32)));
  std::vector<int64_t> block;  // rows 1-3, columns 2-4 of the 5x5 grid
  for (int64_t row = 1; row < 4; ++row)
    for (int64_t column = 2; column < 5; ++column)
      block.push_back(row * 5 + column);
  const auto index = torch::tensor(block);
  const auto small = as_bias(as_is).attention_bias({3, 3, 0}, torch::kFloat32);
  EXPECT_TRUE(torch::equal(small, trained.index_select(1, index).index_select(2, index)));
  expect_error_containing([&] { as_bias(as_is).attention_bias({6, 5, 0}, torch::kFloat32); },
                          {"5x5 grid", "6x5", "resize=bicubic", "relpos_mlp"});
  // bicubic: the (9 x 9)-offset table interpolated to (11 x 9) as torch's bicubic does
  const auto table = bicubic->named_parameters()["relative_position_bias_table"];  // (81, 2)
  const auto expected = torch::nn::functional::interpolate(
      table.t().reshape({1, 2, 9, 9}),
      torch::nn::functional::InterpolateFuncOptions()
          .size(std::vector<int64_t>{11, 9})
          .mode(torch::kBicubic)
          .align_corners(false));  // (1, 2, 11, 9)
  const auto larger = as_bias(bicubic).attention_bias({6, 5, 0}, torch::kFloat32);
  // query (0, 0), key (5, 4): offset (-5, -4), the first row of the 11 x 9 table
  EXPECT_TRUE(torch::allclose(larger.select(1, 0).select(1, 29),
                              expected[0].select(1, 0).select(1, 0), 1e-6, 1e-6));
  // and the reverse pair, offset (5, 4): the last row
  EXPECT_TRUE(torch::allclose(larger.select(1, 29).select(1, 0),
                              expected[0].select(1, 10).select(1, 8), 1e-6, 1e-6));
}

// BEiT's geometric resampling against timm's own resize_rel_pos_bias_table (golden outputs from
// tests/python/make_timm_function_fixtures.py): growing, shrinking, one axis or both, from a 1x1
// window. The class-token rows are kept; the bias of every token pair is timm's table read at
// the new window.
TEST(RelposBias, ResizesByBeitsGeometricResamplingAsTimm) {
  const auto fixtures = read_torch_state_dict(
      POSENC_SOURCE_DIR "/tests/fixtures/timm_functions/resize_rel_pos_bias_table.pth");
  int cases = 0;
  for (const auto& [name, windows] : fixtures) {
    if (name.size() < 8 || name.compare(name.size() - 8, 8, ".windows") != 0)
      continue;
    const std::string base = name.substr(0, name.size() - 8);
    SCOPED_TRACE(base);
    ++cases;
    const auto table = fixtures.at(base + ".table");      // (offsets + 3, heads)
    const auto expected = fixtures.at(base + ".resized");  // (new offsets + 3, heads)
    const auto w = windows.to(torch::kLong);
    const TokenGrid trained{w[0].item<int64_t>(), w[1].item<int64_t>(), 1};
    const TokenGrid other{w[2].item<int64_t>(), w[3].item<int64_t>(), 1};
    const int64_t heads = table.size(1);
    const TokenGrid from{2 * trained.height - 1, 2 * trained.width - 1, 0};
    const TokenGrid to{2 * other.height - 1, 2 * other.width - 1, 0};
    const auto resized =
        resample_offset_table_geometric(table.narrow(0, 0, from.height * from.width), from, to);
    EXPECT_TRUE(torch::allclose(resized, expected.narrow(0, 0, to.height * to.width), 1e-5, 1e-5))
        << (resized - expected.narrow(0, 0, to.height * to.width)).abs().max().item<float>();

    auto geometric = make_encoding("relpos_bias:resize=geometric", {heads * 4, trained, heads});
    auto at_other = make_encoding("relpos_bias:resize=none", {heads * 4, other, heads});
    torch::NoGradGuard no_grad;
    geometric->named_parameters()["relative_position_bias_table"].copy_(table);
    at_other->named_parameters()["relative_position_bias_table"].copy_(expected);
    EXPECT_TRUE(torch::allclose(as_bias(geometric).attention_bias(other, torch::kFloat32),
                                as_bias(at_other).attention_bias(other, torch::kFloat32), 1e-5,
                                1e-5));
    // at the trained window, the identity
    const auto offsets = table.narrow(0, 0, from.height * from.width);
    EXPECT_TRUE(torch::equal(resample_offset_table_geometric(offsets, from, from), offsets));
  }
  EXPECT_EQ(cases, 6);
}

// Swin-V2's continuous position bias: for query (0, 0) and key (1, 3) of a grid trained at 4x4,
// the offset (-1, -3) in units of (4 - 1) / 8, log-spaced, through the MLP, 16 sigmoid.
TEST(RelposMlp, IsSwinV2sLogSpacedMlpOfTheOffsetWithNoBiasForTheClassToken) {
  torch::manual_seed(2);
  auto encoding = make_encoding("relpos_mlp:hidden=8", {kBiasChannels, {4, 4, 1}, kBiasHeads});
  auto parameters = encoding->named_parameters();
  const auto w1 = parameters["cpb_mlp.0.weight"], b1 = parameters["cpb_mlp.0.bias"];
  const auto w2 = parameters["cpb_mlp.2.weight"];
  EXPECT_EQ(parameters.find("cpb_mlp.2.bias"), nullptr) << "Swin-V2's second layer has no bias";
  const auto log_spaced = [](double d) {
    const double scaled = d * 8.0 / 3.0;
    return (scaled > 0 ? 1.0 : -1.0) * std::log2(std::abs(scaled) + 1.0) / 3.0;
  };
  const auto offset = torch::tensor({log_spaced(-1.0), log_spaced(-3.0)}, torch::kFloat32);
  const auto expected =
      16.0 * torch::sigmoid(torch::matmul(w2, torch::relu(torch::matmul(w1, offset) + b1)));
  for (const TokenGrid grid : {TokenGrid{4, 4, 1}, TokenGrid{5, 7, 1}}) {  // any grid, as trained
    const auto bias = as_bias(encoding).attention_bias(grid, torch::kFloat32);
    const int64_t key = 1 + 1 * grid.width + 3;
    EXPECT_TRUE(torch::allclose(bias.select(1, 1).select(1, key), expected, 1e-5, 1e-5))
        << grid.describe();
    EXPECT_EQ(bias.select(1, 0).abs().sum().item<float>(), 0.0f);
    EXPECT_EQ(bias.select(2, 0).abs().sum().item<float>(), 0.0f);
  }
  expect_error_containing([] { make_encoding("relpos_mlp:hidden=0", {16, {2, 2, 0}, 2}); },
                          {"relpos_mlp hidden", "got 0"});
}

// A ViT adds the bias to every block's logits (one module each, or one shared), at any grid,
// beside rotary and additive encodings, with no weight decay on it; a second bias encoding and a
// bias on point sets are refused.
TEST(RelposBias, BiasesTheAttentionOfEveryBlockOfAVisionTransformer) {
  torch::manual_seed(1);
  VisionTransformer biased(testing::two_block_vit_options({"relpos_bias"}));
  biased->eval();
  VisionTransformer plain(testing::two_block_vit_options({"none"}));
  plain->eval();
  {
    torch::NoGradGuard no_grad;
    for (auto& [name, parameter] : plain->named_parameters().pairs())
      biased->named_parameters()[name].copy_(parameter);
  }
  const auto images = torch::randn({2, 1, 28, 20});
  EXPECT_FALSE(torch::allclose(biased->forward(images), plain->forward(images), 1e-4, 1e-4));
  const auto parameters = biased->named_parameters();
  ASSERT_TRUE(parameters.contains("bias_encodings.1.relative_position_bias_table"));
  const auto table = parameters["bias_encodings.0.relative_position_bias_table"];
  const auto groups = biased->weight_decay_groups();
  EXPECT_TRUE(std::any_of(groups.not_decayed.begin(), groups.not_decayed.end(),
                          [&](const torch::Tensor& t) { return t.is_same(table); }));
  VisionTransformer shared(testing::two_block_vit_options({"relpos_bias:shared=true"}));
  EXPECT_FALSE(
      shared->named_parameters().contains("bias_encodings.1.relative_position_bias_table"));
  EXPECT_EQ(shared->forward(images).sizes(), (std::vector<int64_t>{2, 10}));
  VisionTransformer all(
      testing::two_block_vit_options({"learned1d", "rope_mixed", "relpos_mlp"}));
  EXPECT_EQ(all->forward(torch::randn({1, 1, 36, 36})).sizes(), (std::vector<int64_t>{1, 10}));
  {
    torch::NoGradGuard no_grad;  // a gradient reaches every bias module
    for (auto& parameter : all->parameters())
      parameter.mutable_grad() = torch::Tensor();
  }
  all->forward(images).sum().backward();
  for (const auto& item : all->named_parameters())
    if (item.key().rfind("bias_encodings.", 0) == 0)
      EXPECT_TRUE(item.value().grad().defined()) << item.key();
  expect_error_containing(
      [] { VisionTransformer(testing::two_block_vit_options({"relpos_bias", "relpos_mlp"})); },
      {"one attention-bias encoding", "--pe rope_axial --pe relpos_mlp"});
  SetTransformerOptions set_options;
  set_options.encodings = {"relpos_bias"};
  expect_error_containing([&] { SetTransformer model(set_options); },
                          {"relpos_bias", "sets have no grid", "rope_lff"});
}

}  // namespace
}  // namespace posenc
