// What makes an encoding rotary, checked for every registered rotary encoding: logits that
// depend only on the difference of positions, rotations that keep norms, prefix tokens left
// alone; then rope_axial's own angles and its place in a VisionTransformer. (The invariant suite,
// encoding_invariants_test.cpp, covers shapes, dtypes, gradients in double and configs.)
#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "posenc/encoding_registry.h"
#include "posenc/models/vision_transformer.h"
#include "support/test_encodings.h"

namespace posenc {
namespace {

using testing::expect_error_containing;

constexpr int64_t kRotaryChannels = 32;
constexpr int64_t kRotaryHeads = 2;  // head_dim 16

std::vector<std::string> rotary_specs() {
  std::vector<std::string> specs;
  for (const auto& definition : registered_encodings()) {
    auto encoding = make_encoding(nlohmann::json{{"type", definition.name}}, {8, {2, 2, 0}});
    if (encoding->kind() == EncodingKind::Rotary) {
      specs.push_back(definition.name);
      specs.push_back(definition.name + ":pairs=half");
    }
  }
  return specs;
}

class EveryRotaryEncoding : public ::testing::TestWithParam<std::string> {
 protected:
  PositionalEncoding make_rotary() const {
    torch::manual_seed(3);
    auto encoding = make_encoding(GetParam(), {kRotaryChannels, {4, 4, 1}, kRotaryHeads});
    encoding->to(torch::kFloat64);
    return encoding;
  }
};

// per-head logits (B, heads, N, N) of rotated queries and keys (B, N, C)
torch::Tensor rotated_logits(const torch::Tensor& q, const torch::Tensor& k) {
  const auto split = [](const torch::Tensor& x) {
    return x.reshape({x.size(0), x.size(1), kRotaryHeads, -1}).transpose(1, 2);
  };
  return torch::matmul(split(q), split(k).transpose(-2, -1));
}

TEST_P(EveryRotaryEncoding, LogitsDependOnlyOnTheDifferenceOfContinuousPositions) {
  auto encoding = make_rotary();
  if (!encoding->accepts_positions())
    GTEST_SKIP() << "grids only";
  const auto options = torch::TensorOptions(torch::kFloat64);
  const auto q = torch::randn({2, 6, kRotaryChannels}, options);
  const auto k = torch::randn({2, 6, kRotaryChannels}, options);
  const auto positions = torch::rand({2, 6, 1, 2}, options) * 5.0;
  const auto shifted = positions + torch::tensor({-3.5, 11.25}, options);  // every token alike
  const auto at = [&](const torch::Tensor& p) {
    const auto layout = TokenLayout::at_positions(p);
    return rotated_logits(encoding->forward(q, layout), encoding->forward(k, layout));
  };
  EXPECT_TRUE(torch::allclose(at(positions), at(shifted), 1e-9, 1e-9));
  EXPECT_FALSE(torch::allclose(at(positions), rotated_logits(q, k), 1e-3, 1e-3))
      << "nothing rotated";
}

TEST_P(EveryRotaryEncoding, LogitsOnAGridDependOnlyOnTheOffsetBetweenTokens) {
  // the tokens of a 3x4 grid, and the same contents placed at rows 1-3, columns 2-5 of a 5x6
  // grid (every position shifted by (1, 2)): the logits among them are the same
  auto encoding = make_rotary();
  const auto options = torch::TensorOptions(torch::kFloat64);
  const auto q = torch::randn({1, 1 + 12, kRotaryChannels}, options);
  const auto k = torch::randn({1, 1 + 12, kRotaryChannels}, options);
  const auto place = [&](const torch::Tensor& small) {
    auto large = torch::randn({1, 1 + 30, kRotaryChannels}, options);
    large.narrow(1, 0, 1).copy_(small.narrow(1, 0, 1));
    for (int64_t row = 0; row < 3; ++row)
      large.narrow(1, 1 + (row + 1) * 6 + 2, 4).copy_(small.narrow(1, 1 + row * 4, 4));
    return large;
  };
  const TokenGrid small_grid{3, 4, 1}, large_grid{5, 6, 1};
  const auto small =
      rotated_logits(encoding->forward(q, small_grid), encoding->forward(k, small_grid));
  const auto large_logits = rotated_logits(encoding->forward(place(q), large_grid),
                                           encoding->forward(place(k), large_grid));
  // among the positioned tokens: the unrotated class token sees each token's own position
  std::vector<int64_t> placed;
  for (int64_t row = 0; row < 3; ++row)
    for (int64_t column = 0; column < 4; ++column)
      placed.push_back(1 + (row + 1) * 6 + column + 2);
  const auto index = torch::tensor(placed);
  const auto picked = large_logits.index_select(2, index).index_select(3, index);
  EXPECT_TRUE(torch::allclose(picked, small.narrow(2, 1, 12).narrow(3, 1, 12), 1e-9, 1e-9));
}

TEST_P(EveryRotaryEncoding, KeepsEveryHeadsNormAndLeavesPrefixTokensAlone) {
  auto encoding = make_rotary();
  const TokenGrid grid{3, 5, 1};
  const auto tokens = torch::randn({2, 16, kRotaryChannels}, torch::kFloat64);
  const auto rotated = encoding->forward(tokens, grid);
  const auto per_head_norm = [](const torch::Tensor& x) {
    return x.reshape({x.size(0), x.size(1), kRotaryHeads, -1}).norm(2, -1);
  };
  EXPECT_TRUE(torch::allclose(per_head_norm(rotated), per_head_norm(tokens), 1e-12, 1e-12));
  EXPECT_TRUE(torch::equal(rotated.narrow(1, 0, 1), tokens.narrow(1, 0, 1)));
  EXPECT_FALSE(torch::allclose(rotated.narrow(1, 2, 14), tokens.narrow(1, 2, 14), 1e-3, 1e-3));
}

INSTANTIATE_TEST_SUITE_P(Registry, EveryRotaryEncoding, ::testing::ValuesIn(rotary_specs()),
                         [](const auto& info) { return testing::spec_test_name(info.param); });

// The angles of RoPE-Axial (naver-ai/rope-vit's compute_axial_cis with theta = 100): head_dim 8
// has 4 pairs, frequencies 100^0 = 1 and 100^(-1/2) = 0.1; pairs 0-1 follow the column, 2-3 the
// row. The token at row 2, column 3 of a 4x5 grid:
TEST(RopeAxial, TurnsHalfThePairsByTheColumnAndHalfByTheRow) {
  auto encoding = make_encoding("rope_axial", {8, {4, 5, 0}, 1});
  auto* rotary = dynamic_cast<RotaryEncodingImpl*>(encoding.get());
  ASSERT_NE(rotary, nullptr);
  const auto options = torch::TensorOptions(torch::kFloat64);
  const auto angles = rotary->angles(TokenGrid{4, 5, 0}, options);  // (1, 20, 1, 4)
  ASSERT_EQ(angles.sizes(), (std::vector<int64_t>{1, 20, 1, 4}));
  const auto token = angles[0][2 * 5 + 3][0];
  EXPECT_TRUE(torch::allclose(token, torch::tensor({3.0, 0.3, 2.0, 0.2}, options)));
  // interleaved: channels (0, 1) are pair 0, turned by 3 rad
  auto x = torch::zeros({1, 20, 8}, options);
  x[0][13][0] = 1.0;
  const auto turned = encoding->forward(x, TokenGrid{4, 5, 0});
  EXPECT_NEAR(turned[0][13][0].item<double>(), std::cos(3.0), 1e-12);
  EXPECT_NEAR(turned[0][13][1].item<double>(), std::sin(3.0), 1e-12);
  // rotate-half: channel 0 pairs with channel 4; ij: the row comes first
  auto half = make_encoding("rope_axial:pairs=half,indexing=ij", {8, {4, 5, 0}, 1});
  const auto turned_half = half->forward(x, TokenGrid{4, 5, 0});
  EXPECT_NEAR(turned_half[0][13][0].item<double>(), std::cos(2.0), 1e-12);
  EXPECT_NEAR(turned_half[0][13][4].item<double>(), std::sin(2.0), 1e-12);
  // normalised: the centre of column 3 of 5 is at 0.4, 2 pi x 0.4 rad
  auto normalized = make_encoding("rope_axial:coords=normalized", {8, {4, 5, 0}, 1});
  const auto spread = dynamic_cast<RotaryEncodingImpl*>(normalized.get())
                          ->angles(TokenGrid{4, 5, 0}, options)[0][13][0];
  EXPECT_NEAR(spread[0].item<double>(), 2.0 * M_PI * 0.4, 1e-12);
}

// rope_axial has no parameters: a grid's angles are computed once and reused, by every block and
// step, until another grid, dtype or device is asked for.
TEST(RopeAxial, KeepsTheAnglesOfTheLastGridDtypeAndDevice) {
  auto encoding = make_encoding("rope_axial", {8, {4, 5, 0}, 1});
  auto* rotary = dynamic_cast<RotaryEncodingImpl*>(encoding.get());
  ASSERT_NE(rotary, nullptr);
  const auto as_float = torch::TensorOptions(torch::kFloat32);
  const auto first = rotary->angles(TokenGrid{4, 5, 1}, as_float);
  EXPECT_EQ(rotary->angles(TokenGrid{4, 5, 0}, as_float).data_ptr(), first.data_ptr())
      << "the same grid (prefix tokens are never turned) must reuse the angles";
  const auto other_grid = rotary->angles(TokenGrid{5, 4, 0}, as_float);
  EXPECT_EQ(other_grid.size(1), 20);
  EXPECT_FALSE(torch::equal(other_grid, first)) << "a 5 x 4 grid has other coordinates";
  const auto in_double = rotary->angles(TokenGrid{5, 4, 0}, torch::kFloat64);
  EXPECT_EQ(in_double.scalar_type(), torch::kFloat64);
  EXPECT_TRUE(torch::allclose(in_double.to(torch::kFloat32), other_grid));
  // computed inside InferenceMode, the angles are not kept: a training step right after a
  // prediction must be able to save them for its backward
  {
    c10::InferenceMode inference;
    rotary->angles(TokenGrid{3, 3, 0}, as_float);
  }
  auto tokens = torch::randn({2, 9, 8}, torch::requires_grad());
  encoding->forward(tokens, TokenGrid{3, 3, 0}).sum().backward();
  EXPECT_TRUE(tokens.grad().defined());
}

// EVA-02's ref_feat_shape: a grid's patch coordinates times ref / size per axis, so the angles at
// the reference grid are the plain ones and any other grid spans the same range.
TEST(RopeAxial, StretchesAnyGridOntoItsReferenceGridAsEva02) {
  const auto options = torch::TensorOptions(torch::kFloat64);
  auto angles_of = [&](const std::string& spec, const TokenGrid& grid) {
    auto encoding = make_encoding(spec, {8, {4, 8, 0}, 1});
    return dynamic_cast<RotaryEncodingImpl*>(encoding.get())->angles(grid, options);
  };
  const std::string stretched = "rope_axial:ref_height=4,ref_width=8";
  EXPECT_TRUE(torch::allclose(angles_of(stretched, {4, 8, 0}), angles_of("rope_axial", {4, 8, 0})));
  EXPECT_TRUE(torch::allclose(angles_of(stretched, {8, 16, 1}),
                              angles_of("rope_axial", {8, 16, 1}) * 0.5));
  // 2 x 2: the column doubled (x, first half of the pairs), the row doubled too
  const auto small = angles_of(stretched, {2, 2, 0})[0][3][0];  // row 1, column 1
  const auto plain = angles_of("rope_axial", {2, 2, 0})[0][3][0];
  EXPECT_NEAR(small[0].item<double>(), 4.0 * plain[0].item<double>(), 1e-12);
  EXPECT_NEAR(small[2].item<double>(), 2.0 * plain[2].item<double>(), 1e-12);
  expect_error_containing([] { make_encoding("rope_axial:ref_height=4", {8, {4, 4, 0}, 1}); },
                          {"both grid sizes > 0, or both 0"});
  expect_error_containing(
      [] {
        make_encoding("rope_axial:ref_height=4,ref_width=4,coords=normalized", {8, {4, 4, 0}, 1});
      },
      {"use one or the other"});
  auto encoding = make_encoding(stretched, {8, {4, 8, 0}, 1});
  expect_error_containing(
      [&] {
        encoding->forward(torch::randn({1, 3, 8}),
                          TokenLayout::at_positions(torch::rand({1, 3, 1, 2}), 0));
      },
      {"explicit positions are used as given"});
}

TEST(RopeAxial, SaysWhatTheHeadsAndPositionsMustBe) {
  expect_error_containing([] { make_encoding("rope_axial", {24, {2, 2, 0}, 4}); },
                          {"divisible by 4", "C = 24, heads = 4", "head_dim 6"});
  expect_error_containing([] { make_encoding("rope_axial", {16, {2, 2, 0}, 3}); },
                          {"heads must divide", "C = 16, heads = 3"});
  expect_error_containing([] { make_encoding("rope_axial:temperature=1", {16, {2, 2, 0}, 1}); },
                          {"temperature", "> 1"});
  auto encoding = make_encoding("rope_axial", {16, {2, 2, 0}, 1});
  expect_error_containing(
      [&] {
        encoding->forward(torch::randn({1, 3, 16}),
                          TokenLayout::at_positions(torch::rand({1, 3, 2, 2})));
      },
      {"G=1, M=2", "[1, 3, 2, 2]"});
  auto normalized = make_encoding("rope_axial:coords=normalized", {16, {2, 2, 0}, 1});
  expect_error_containing(
      [&] {
        normalized->forward(torch::randn({1, 3, 16}),
                            TokenLayout::at_positions(torch::rand({1, 3, 1, 2})));
      },
      {"coords=normalized", "coords=patch"});
}

// Heo et al.'s (naver's init_random_2d_freqs) start with temperature 10: in each head, pair k of
// the first quarter and pair k of the second have magnitude 10^(-4k / head_dim) and point in
// perpendicular directions, one random angle per head.
TEST(RopeMixed, StartsFromNaversMagnitudesInARandomDirectionPerHeadAndLearnsThem) {
  torch::manual_seed(5);
  auto encoding = make_encoding("rope_mixed", {32, {4, 4, 1}, 4});  // head_dim 8: 4 pairs
  const auto freqs = encoding->named_parameters()["freqs"].to(torch::kFloat64);  // (2, 4, 4)
  ASSERT_EQ(freqs.sizes(), (std::vector<int64_t>{2, 4, 4}));
  const auto magnitude = (freqs[0].square() + freqs[1].square()).sqrt();  // (heads, pairs)
  const auto expected = torch::tensor({1.0, std::pow(10.0, -0.5), 1.0, std::pow(10.0, -0.5)},
                                      torch::kFloat64);
  EXPECT_TRUE(torch::allclose(magnitude, expected.expand({4, 4}), 1e-6, 1e-6));
  const auto dot = freqs[0].narrow(1, 0, 2) * freqs[0].narrow(1, 2, 2) +
                   freqs[1].narrow(1, 0, 2) * freqs[1].narrow(1, 2, 2);
  EXPECT_TRUE(torch::allclose(dot, torch::zeros_like(dot), 1e-6, 1e-6)) << "perpendicular";
  const auto direction = torch::atan2(freqs[1].select(1, 0), freqs[0].select(1, 0));  // (heads)
  EXPECT_GT((direction - direction[0]).abs().max().item<double>(), 1e-3) << "one per head";
  // the angle of pair k at (x, y) is x fx + y fy
  auto* rotary = dynamic_cast<RotaryEncodingImpl*>(encoding.get());
  const auto angles = rotary->angles(TokenGrid{4, 4, 1}, torch::kFloat64);  // (1, 16, 4, 4)
  const auto at_row1_col3 = angles[0][1 * 4 + 3];
  EXPECT_TRUE(torch::allclose(at_row1_col3, 3 * freqs[0] + 1 * freqs[1], 1e-6, 1e-6));
  // without rotate: every head axial, the first quarter along x
  auto axial = make_encoding("rope_mixed:rotate=false", {32, {4, 4, 1}, 4});
  const auto straight = axial->named_parameters()["freqs"];
  EXPECT_TRUE(torch::allclose(straight[1].narrow(1, 0, 2), torch::zeros({4, 2}), 0, 1e-7));
  // trainable: the logits' gradient reaches the frequencies
  const auto tokens = torch::randn({1, 17, 32});
  encoding->forward(tokens, TokenGrid{4, 4, 1}).square().sum().backward();
  EXPECT_GT(encoding->named_parameters()["freqs"].grad().abs().sum().item<double>(), 0.0);
}

// rope_lff's angles are x_g W_r[h]^T, group g turning its own share of each head's pairs; with
// G = 2, M = 2 (a box's two corners) moving both corners by one vector keeps every logit.
TEST(RopeLff, TurnsEachGroupsShareOfThePairsByItsPositionTimesWr) {
  torch::manual_seed(2);
  auto encoding = make_encoding("rope_lff:G=2,M=2,gamma=0.5", {16, {1, 1, 0}, 2});  // 4 pairs
  encoding->to(torch::kFloat64);
  const auto wr = encoding->named_parameters()["Wr"];  // (heads 2, pairs/G 2, M 2)
  ASSERT_EQ(wr.sizes(), (std::vector<int64_t>{2, 2, 2}));
  EXPECT_NEAR(wr.std().item<double>(), 2.0, 1.5) << "N(0, gamma^-2): std 1/gamma";
  const auto positions = torch::randn({1, 3, 2, 2}, torch::kFloat64);
  auto* rotary = dynamic_cast<RotaryEncodingImpl*>(encoding.get());
  const auto angles =
      rotary->angles(TokenLayout::at_positions(positions), torch::kFloat64);  // (1, 3, 2, 4)
  ASSERT_EQ(angles.sizes(), (std::vector<int64_t>{1, 3, 2, 4}));
  // token 1, head 1, pair 3 = group 1's second pair: corner 1 . W_r[1][1]
  EXPECT_NEAR(angles[0][1][1][3].item<double>(),
              (positions[0][1][1] * wr[1][1]).sum().item<double>(), 1e-12);
  EXPECT_NEAR(angles[0][1][1][0].item<double>(),
              (positions[0][1][0] * wr[1][0]).sum().item<double>(), 1e-12);
  const auto q = torch::randn({1, 3, 16}, torch::kFloat64);
  const auto k = torch::randn({1, 3, 16}, torch::kFloat64);
  const auto logits = [&](const torch::Tensor& p) {
    const auto layout = TokenLayout::at_positions(p);
    return rotated_logits(encoding->forward(q, layout), encoding->forward(k, layout));
  };
  const auto moved = positions + torch::tensor({2.5, -7.0}, torch::kFloat64);
  EXPECT_TRUE(torch::allclose(logits(positions), logits(moved), 1e-9, 1e-9));
  // learn_fourier=false freezes W_r
  auto frozen = make_encoding("rope_lff:learn_fourier=false", {16, {1, 1, 0}, 2});
  EXPECT_FALSE(frozen->named_parameters()["Wr"].requires_grad());
}

TEST(RopeLff, SaysWhatItsPositionsAndHeadsMustBe) {
  expect_error_containing([] { make_encoding("rope_lff:G=3", {16, {2, 2, 0}, 2}); },
                          {"G groups", "head_dim / 2 must be divisible by G", "(4 pairs), G = 3"});
  expect_error_containing([] { make_encoding("rope_lff:gamma=0", {16, {2, 2, 0}, 2}); },
                          {"gamma", "positive"});
  auto boxes = make_encoding("rope_lff:G=2,M=2", {16, {2, 2, 0}, 2});
  expect_error_containing([&] { boxes->forward(torch::randn({1, 5, 16}), TokenGrid{2, 2, 1}); },
                          {"G = 2, M = 2", "cannot encode a 2-D token grid", "G = 1, M = 2"});
  expect_error_containing(
      [&] {
        boxes->forward(torch::randn({1, 3, 16}),
                       TokenLayout::at_positions(torch::rand({1, 3, 1, 2})));
      },
      {"G=2, M=2", "[1, 3, 1, 2]"});
  expect_error_containing([] { make_encoding("rope_mixed", {24, {2, 2, 0}, 4}); },
                          {"rope_mixed", "divisible by 4", "head_dim 6"});
}

// A ViT with RoPE runs at any grid, turns queries and keys in every block (not the class token),
// combines with an added table (RoPE-ViT's "+APE") and refuses a second rotary encoding.
TEST(RopeAxial, TurnsTheAttentionOfEveryBlockOfAVisionTransformer) {
  torch::manual_seed(1);
  VisionTransformer rope(testing::two_block_vit_options({"rope_axial"}));
  rope->eval();
  torch::manual_seed(1);
  VisionTransformer plain(testing::two_block_vit_options({"none"}));
  plain->eval();
  torch::NoGradGuard no_grad;
  for (auto& [name, parameter] : rope->named_parameters().pairs())
    parameter.copy_(plain->named_parameters()[name]);
  const auto images = torch::randn({2, 1, 28, 20});
  EXPECT_EQ(rope->forward(images).sizes(), (std::vector<int64_t>{2, 10}));
  EXPECT_FALSE(torch::allclose(rope->forward(images), plain->forward(images), 1e-4, 1e-4));
  EXPECT_EQ(rope->forward(torch::randn({1, 1, 4, 4})).sizes(), (std::vector<int64_t>{1, 10}));
  expect_error_containing(
      [&] { rope->positional_signal(images); },
      {"only positional encodings act inside attention", "no embedding to probe"});

  VisionTransformer with_table(testing::two_block_vit_options({"learned1d", "rope_axial"}));
  EXPECT_EQ(with_table->forward(images).sizes(), (std::vector<int64_t>{2, 10}));
  expect_error_containing(
      [] { VisionTransformer(testing::two_block_vit_options({"rope_axial", "rope_axial"})); },
      {"one rotary encoding", "--pe learned1d --pe rope_axial"});
  auto odd = testing::two_block_vit_options({"rope_axial"});
  odd.heads = 16;  // head_dim 4: one pair per axis
  EXPECT_EQ(VisionTransformer(odd)->forward(images).sizes(), (std::vector<int64_t>{2, 10}));
  odd.heads = 32;  // head_dim 2
  expect_error_containing([&] { VisionTransformer model(odd); }, {"divisible by 4", "head_dim 2"});
}

// rope_mixed's frequencies are per block (each block's module starts in its own directions) and,
// as every encoding parameter, free of weight decay.
TEST(RopeMixed, HasItsOwnFrequenciesInEveryBlockFreeOfWeightDecay) {
  torch::manual_seed(4);
  VisionTransformer model(testing::two_block_vit_options({"rope_mixed"}));
  const auto parameters = model->named_parameters();
  const auto first = parameters["rotary_encodings.0.freqs"];
  const auto second = parameters["rotary_encodings.1.freqs"];
  EXPECT_EQ(first.sizes(), (std::vector<int64_t>{2, 2, 16}));  // (fx fy, heads, head_dim / 2)
  EXPECT_FALSE(torch::allclose(first, second));
  const auto groups = model->weight_decay_groups();
  const auto holds = [](const std::vector<torch::Tensor>& group, const torch::Tensor& t) {
    return std::any_of(group.begin(), group.end(),
                       [&](const torch::Tensor& x) { return x.is_same(t); });
  };
  EXPECT_TRUE(holds(groups.not_decayed, first));
  EXPECT_FALSE(holds(groups.decayed, second));
  EXPECT_EQ(model->forward(torch::randn({2, 1, 20, 36})).sizes(), (std::vector<int64_t>{2, 10}));
}

}  // namespace
}  // namespace posenc
