// Native-resolution batches (TokenLayout::of_grids): images of different sizes and aspect ratios
// in one padded batch. The defining property, for every registered encoding and every head: each
// image gets what it would get alone at its own size, and the padding changes nothing, in the
// outputs and in the gradients.
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "posenc/encoding_registry.h"
#include "posenc/models/vision_transformer.h"
#include "support/test_encodings.h"

namespace posenc {
namespace {

using testing::expect_error_containing;

// Four images, two of them on the same grid, one class token each: N = 1 + 12.
const std::vector<TokenGrid> kMixedGrids{{3, 4, 1}, {1, 5, 1}, {3, 4, 1}, {2, 2, 1}};

TEST(GridBatchLayout, PadsEachImageAfterItsOwnTokensAndMasksThePadding) {
  const auto layout = TokenLayout::of_grids(kMixedGrids);
  ASSERT_TRUE(layout.is_grid_batch());
  EXPECT_FALSE(layout.is_grid());
  EXPECT_EQ(layout.total_tokens(), 13);
  EXPECT_EQ(layout.positioned_tokens(), 12);
  const auto mask = layout.token_mask();  // (4, 13)
  EXPECT_TRUE(torch::equal(mask.sum(1), torch::tensor({13, 6, 13, 5}, torch::kLong)));
  EXPECT_TRUE(mask[1].narrow(0, 0, 6).all().item<bool>());
  EXPECT_FALSE(mask[1].narrow(0, 6, 7).any().item<bool>());
  EXPECT_NE(layout.describe().find("a batch of 4 grids (3x4, 1x5, 3x4, 2x2)"), std::string::npos)
      << layout.describe();
  const auto groups = layout.images_by_grid();  // per distinct grid, in order of appearance
  ASSERT_EQ(groups.size(), 3U);
  EXPECT_EQ(groups[0].grid, (TokenGrid{3, 4, 1}));
  EXPECT_TRUE(torch::equal(groups[0].images, torch::tensor({0, 2}, torch::kLong)));
  EXPECT_TRUE(torch::equal(groups[1].images, torch::tensor({1}, torch::kLong)));
  EXPECT_EQ(groups[2].grid, (TokenGrid{2, 2, 1}));
  EXPECT_TRUE(torch::equal(groups[2].images, torch::tensor({3}, torch::kLong)));
  // one grid for all: the plain grid layout, no padding
  EXPECT_TRUE(TokenLayout::of_grids({{3, 4, 1}, {3, 4, 1}}).is_grid());
  expect_error_containing([] { TokenLayout::of_grids({}); }, {"at least one image"});
  expect_error_containing([] { TokenLayout::of_grids({{2, 2, 1}, {2, 3, 0}}); },
                          {"same prefix tokens", "image 0 has 1", "image 1 has 0"});
  expect_error_containing([] { TokenLayout::of_grids({{2, 2, 1}, {0, 3, 1}}); },
                          {"height and width >= 1"});
  auto encoding = make_encoding("sincos2d", {8, {4, 4, 1}});
  expect_error_containing([&] { encoding->forward(torch::randn({3, 13, 8}), layout); },
                          {"batch size 3", "4 images' grids"});
}

class EveryEncodingOnABatchOfGrids : public ::testing::TestWithParam<std::string> {};

// Each image's tokens get what the encoding gives that image alone on its grid; padding tokens
// come out as they went in.
TEST_P(EveryEncodingOnABatchOfGrids, GivesEachImageWhatItGetsAlone) {
  torch::manual_seed(11);
  auto encoding = make_encoding(GetParam(), {16, {4, 4, 1}, 2});
  encoding->to(torch::kFloat64);
  encoding->eval();
  const auto layout = TokenLayout::of_grids(kMixedGrids);
  const auto tokens = torch::randn({4, 13, 16}, torch::kFloat64);
  const auto mixed = encoding->forward(tokens, layout);
  for (size_t b = 0; b < kMixedGrids.size(); ++b) {
    SCOPED_TRACE(b);
    const int64_t own = kMixedGrids[b].total_tokens();
    const auto alone =
        encoding->forward(tokens.narrow(0, b, 1).narrow(1, 0, own), kMixedGrids[b]);
    EXPECT_TRUE(torch::allclose(mixed.narrow(0, b, 1).narrow(1, 0, own), alone, 1e-10, 1e-10));
    EXPECT_TRUE(torch::equal(mixed.narrow(0, b, 1).narrow(1, own, 13 - own),
                             tokens.narrow(0, b, 1).narrow(1, own, 13 - own)));
  }
}

std::vector<std::string> registered_names() {
  std::vector<std::string> names;
  for (const auto& definition : registered_encodings())
    names.push_back(definition.name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(Registry, EveryEncodingOnABatchOfGrids,
                         ::testing::ValuesIn(registered_names()),
                         [](const auto& info) { return testing::spec_test_name(info.param); });

struct ModelCase {
  std::vector<std::string> encodings;
  std::string head;
  bool fc_norm = false;
};

std::string model_case_name(const ModelCase& c) {
  std::string name = c.head + (c.fc_norm ? "_fc_norm" : "");
  for (const auto& spec : c.encodings)
    name += "_" + testing::spec_test_name(spec);
  return name;
}

std::vector<ModelCase> model_cases() {
  std::vector<ModelCase> cases;
  for (const auto& definition : registered_encodings()) {
    cases.push_back({{definition.name}, "token"});
    cases.push_back({{definition.name}, "gap"});
  }
  cases.push_back({{"learned1d", "rope_mixed", "relpos_mlp"}, "gap_with_token", true});
  cases.push_back({{"lff", "peg", "relpos_bias:shared=true"}, "gap"});
  return cases;
}

class EveryModelOnImagesOfTheirOwnSizes : public ::testing::TestWithParam<ModelCase> {
 protected:
  VisionTransformer make_model() const {
    auto options = testing::two_block_vit_options(GetParam().encodings);
    options.head = GetParam().head;
    options.fc_norm = GetParam().fc_norm;
    for (const auto& spec : options.encodings)
      if (spec.rfind("peg", 0) == 0)
        options.conditional_after_blocks = {0};
    torch::manual_seed(12);
    VisionTransformer model(options);
    {
      torch::NoGradGuard no_grad;  // zero-initialised tables and biases would hide mistakes
      for (auto& parameter : model->parameters())
        parameter.add_(torch::randn_like(parameter) * 0.05);
    }
    return model;
  }
};

// Each image's logits are those it gets alone at its own size, whatever shares its batch.
TEST_P(EveryModelOnImagesOfTheirOwnSizes, GivesEachImageItsLogitsAlone) {
  auto model = make_model();
  model->eval();
  torch::manual_seed(13);
  const std::vector<torch::Tensor> images{torch::randn({1, 28, 28}), torch::randn({1, 20, 36}),
                                          torch::randn({1, 12, 12}), torch::randn({1, 28, 28}),
                                          torch::randn({1, 36, 8})};
  torch::NoGradGuard no_grad;
  const auto mixed = model->forward(images);  // (5, 10)
  ASSERT_EQ(mixed.sizes(), (std::vector<int64_t>{5, 10}));
  for (size_t b = 0; b < images.size(); ++b) {
    const auto alone = model->forward(images[b].unsqueeze(0));
    EXPECT_TRUE(torch::allclose(mixed.narrow(0, b, 1), alone, 1e-5, 1e-5))
        << "image " << b << ": " << (mixed.narrow(0, b, 1) - alone).abs().max().item<float>();
  }
  // one size for all: the same as the stacked batch
  const std::vector<torch::Tensor> same{images[0], images[3]};
  EXPECT_TRUE(torch::allclose(model->forward(same), model->forward(torch::stack(same)), 1e-6,
                              1e-6));
}

INSTANTIATE_TEST_SUITE_P(Registry, EveryModelOnImagesOfTheirOwnSizes,
                         ::testing::ValuesIn(model_cases()),
                         [](const auto& info) { return model_case_name(info.param); });

// The padding changes no gradient: a mixed batch's summed loss has the gradients of the images'
// losses taken one by one.
TEST(NativeResolutionBatches, TrainLikeTheirImagesOneByOne) {
  auto options =
      testing::two_block_vit_options({"learned2d", "peg", "rope_mixed", "relpos_bias"});
  options.conditional_after_blocks = {0};
  options.head = "gap_with_token";
  torch::manual_seed(14);
  VisionTransformer model(options);
  model->train();  // no stochastic depth in these options: training is deterministic
  const std::vector<torch::Tensor> images{torch::randn({1, 28, 20}), torch::randn({1, 12, 16}),
                                          torch::randn({1, 16, 28})};
  const auto labels = torch::tensor({3, 7, 1});
  const auto gradients = [&](const std::function<torch::Tensor()>& loss) {
    model->zero_grad();
    loss().backward();
    std::vector<torch::Tensor> grads;
    for (const auto& parameter : model->parameters())
      grads.push_back(parameter.grad().defined() ? parameter.grad().clone()
                                                 : torch::zeros_like(parameter));
    return grads;
  };
  const auto mixed = gradients([&] {
    return torch::nn::functional::cross_entropy(
        model->forward(images), labels,
        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  });
  const auto one_by_one = gradients([&] {
    auto total = torch::zeros({});
    for (size_t b = 0; b < images.size(); ++b)
      total = total + torch::nn::functional::cross_entropy(
                          model->forward(images[b].unsqueeze(0)), labels.narrow(0, b, 1),
                          torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
    return total;
  });
  for (size_t i = 0; i < mixed.size(); ++i)
    EXPECT_TRUE(torch::allclose(mixed[i], one_by_one[i], 1e-4, 1e-5)) << "parameter " << i;
}

TEST(NativeResolutionBatches, SaysWhatIsWrongWithAnImage) {
  VisionTransformer model(testing::two_block_vit_options({"sincos2d"}));
  expect_error_containing([&] { model->forward(std::vector<torch::Tensor>{}); },
                          {"at least one image"});
  expect_error_containing(
      [&] { model->forward({torch::randn({1, 8, 8}), torch::randn({3, 8, 8})}); },
      {"image 1 of the batch must be (1, H, W)", "[3, 8, 8]"});
  expect_error_containing(
      [&] { model->forward({torch::randn({1, 8, 8}), torch::randn({1, 2, 8})}); },
      {"image 1 of the batch is 2x8", "smaller than one 4x4 patch"});
}

}  // namespace
}  // namespace posenc
