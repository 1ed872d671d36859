// The VisionTransformer: any resolution, encodings placed where asked, heads, presets, and the
// weight-decay split of the official recipe.
#include <set>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "posenc/models/vision_transformer.h"
#include "posenc/train/run_config.h"
#include "support/test_encodings.h"

namespace posenc {
namespace {

using testing::expect_error_containing;

VisionTransformerOptions small_model() {
  VisionTransformerOptions options = VisionTransformerOptions::preset("nano");
  options.dim = 16;
  options.depth = 2;
  options.heads = 2;
  options.drop_path = 0.0;
  return options;
}

TEST(VisionTransformer, ClassifiesAnyResolutionThePatchDividesWithEitherHead) {
  for (const std::string head : {"token", "gap"}) {
    for (const std::string pe : {"peg", "learned1d", "lff", "sincos2d", "none"}) {
      auto options = small_model();
      options.head = head;
      options.encodings = {pe};
      VisionTransformer model(options);
      model->eval();
      for (auto [height, width] :
           std::vector<std::pair<int64_t, int64_t>>{{28, 28}, {20, 20}, {36, 44}, {4, 4}}) {
        auto logits = model->forward(torch::randn({3, 1, height, width}));
        EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{3, 10})) << head << " " << pe;
        EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
        auto tokens = model->features(torch::randn({1, 1, height, width}));
        EXPECT_EQ(tokens.size(1), options.prefix_tokens() + (height / 4) * (width / 4));
      }
    }
  }
}

TEST(VisionTransformer, PlacesOneConditionalEncodingPerListedBlockAndAdditiveOnesOnce) {
  auto options = small_model();
  options.depth = 4;
  options.encodings = {"peg", "learned1d"};
  options.conditional_after_blocks = {-1, 0, 3};
  VisionTransformer model(options);
  std::set<std::string> encodings;
  for (const auto& item : model->named_parameters()) {
    const auto& name = item.key();
    if (name.find("encodings.") != std::string::npos)
      encodings.insert(name.substr(0, name.find('.', name.find('.') + 1)));
  }
  EXPECT_EQ(encodings,
            (std::set<std::string>{"additive_encodings.0", "conditional_encodings.0",
                                   "conditional_encodings.1", "conditional_encodings.2"}));
  // A PEG before the first block is applied there: with every other weight shared, the model
  // equals the one without it while the PEG's conv is zero (its residual is the identity), and
  // differs once the conv is not.
  auto with_peg = options;
  with_peg.encodings = {"peg"};
  with_peg.conditional_after_blocks = {-1};
  VisionTransformer a(with_peg);
  auto without = with_peg;
  without.encodings = {};
  VisionTransformer b(without);
  a->eval();
  b->eval();
  torch::NoGradGuard no_grad;
  const auto shared = b->named_parameters();
  for (auto& item : a->named_parameters()) {
    if (item.key().rfind("conditional_encodings.", 0) == 0)
      item.value().zero_();
    else
      item.value().copy_(shared[item.key()]);
  }
  auto images = torch::randn({2, 1, 28, 28});
  EXPECT_TRUE(torch::equal(a->forward(images), b->forward(images)));
  for (auto& item : a->named_parameters())
    if (item.key().rfind("conditional_encodings.", 0) == 0)
      item.value().normal_(0.0, 0.1);
  EXPECT_FALSE(torch::allclose(a->forward(images), b->forward(images), 1e-3, 1e-3));
}

TEST(VisionTransformer, RejectsSizesThePatchDoesNotDivideUnlessPaddingIsOn) {
  auto options = small_model();
  VisionTransformer strict(options);
  expect_error_containing(
      [&] {
        strict->forward(torch::randn({1, 1, 30, 28}));
      },
      {"30x28", "patch size 4", "pad_to_patch"});
  expect_error_containing([&] { strict->forward(torch::randn({1, 3, 28, 28})); }, {"(B, 1, H, W)"});
  expect_error_containing([&] { strict->check_image_size(28, 30); },
                          {"28x30", "e.g. 28x32", "--pad-to-patch"});
  options.pad_to_patch = true;
  VisionTransformer padded(options);
  EXPECT_EQ(padded->features(torch::randn({1, 1, 30, 29})).size(1), 1 + 8 * 8);
  // padding is not in the weights: a model built without it can take it on (posenc eval)
  strict->set_pad_to_patch(true);
  EXPECT_NO_THROW(strict->check_image_size(28, 30));
  EXPECT_EQ(strict->features(torch::randn({1, 1, 30, 29})).size(1), 1 + 8 * 8);
}

TEST(VisionTransformer, SplitsParametersForWeightDecayLikeTheOfficialRecipe) {
  auto options = small_model();
  options.encodings = {"peg", "learned1d"};
  VisionTransformer model(options);
  const auto groups = model->weight_decay_groups();
  std::set<const void*> without;
  for (const auto& p : groups.not_decayed)
    without.insert(p.data_ptr());
  std::set<const void*> with;
  for (const auto& p : groups.decayed)
    with.insert(p.data_ptr());
  for (const auto& item : model->named_parameters()) {
    const auto& name = item.key();
    const bool excluded = without.count(item.value().data_ptr()) > 0;
    EXPECT_NE(excluded, with.count(item.value().data_ptr()) > 0) << name << " in exactly one group";
    const bool should_exclude = item.value().dim() <= 1 || name == "cls_token" ||
                                name.find("encodings.") != std::string::npos;
    EXPECT_EQ(excluded, should_exclude) << name;
  }
  EXPECT_GT(with.size(), 0u);
}

TEST(VisionTransformer, OptionsRoundTripThroughJsonAndRejectBadValues) {
  auto options = VisionTransformerOptions::preset("micro");
  options.encodings = {"lff:F=32", "peg:k=5"};
  options.conditional_after_blocks = {0, 1, 2};
  EXPECT_EQ(VisionTransformerOptions::from_json(options.to_json()).to_json(), options.to_json());
  expect_error_containing([] { VisionTransformerOptions::preset("huge"); },
                          {"unknown model preset 'huge'", "tiny, small, micro, nano"});
  expect_error_containing(
      [] {
        VisionTransformerOptions::from_json({{"depht", 3}});
      },
      {"unknown model option 'depht'", "depth"});
  expect_error_containing(
      [] {
        TrainingOptions::from_json({{"learning_rte", 0.1}});
      },
      {"unknown training option 'learning_rte'", "learning_rate"});
  expect_error_containing(
      [] {
        DataSource::from_json({{"folder", "x"}});
      },
      {"unknown data option 'folder'", "directory"});
  expect_error_containing(
      [] {
        RunConfig::from_json({{"model", nlohmann::json::object()},
                              {"training", nlohmann::json::object()},
                              {"extra", 1}});
      },
      {"unknown run configuration option 'extra'"});
  expect_error_containing(
      [] {
        VisionTransformerOptions::from_json({{"dim", 10}, {"heads", 3}});
      },
      {"divisible by heads"});
  expect_error_containing(
      [] {
        VisionTransformerOptions::from_json({{"conditional_after_blocks", {9}}});
      },
      {"position 9", "-1", "5"});
  expect_error_containing(
      [] {
        VisionTransformerOptions::from_json({{"head", "mean"}});
      },
      {"'token'", "'gap'"});
  auto bad_encoding = small_model();
  bad_encoding.encodings = {"fourier"};
  expect_error_containing([&] { VisionTransformer model(bad_encoding); }, {"unknown encoding"});
}

// timm's fc_norm: the final norm after the mean of the patch tokens instead of before it (BEiT,
// timm's avg-pooled ViTs), as a module named fc_norm.
TEST(VisionTransformer, NormalisesAfterThePoolingWithFcNorm) {
  auto options = small_model();
  options.encodings = {"learned1d"};
  options.head = "gap_with_token";
  options.fc_norm = true;
  torch::manual_seed(3);
  VisionTransformer model(options);
  model->eval();
  const auto parameters = model->named_parameters();
  EXPECT_TRUE(parameters.contains("fc_norm.weight"));
  EXPECT_FALSE(parameters.contains("norm.weight"));
  {
    torch::NoGradGuard no_grad;
    parameters["fc_norm.weight"].normal_(1.0, 0.3);
    parameters["fc_norm.bias"].normal_(0.0, 0.3);
  }
  const auto images = torch::randn({3, 1, 28, 28});
  const auto tokens = model->features(images);  // (3, 1 + 49, 16), not normalised
  const auto pooled = torch::layer_norm(tokens.narrow(1, 1, 49).mean(1), {16},
                                        parameters["fc_norm.weight"], parameters["fc_norm.bias"],
                                        1e-6);
  const auto expected =
      torch::nn::functional::linear(pooled, parameters["head.weight"], parameters["head.bias"]);
  EXPECT_TRUE(torch::allclose(model->forward(images), expected, 1e-5, 1e-5));
  options.head = "token";
  expect_error_containing([&] { VisionTransformer refused(options); },
                          {"fc_norm", "gap or gap_with_token head"});
}

// The attention's input bias: timm's qkv.bias, none (qkv_bias=False), or BEiT's q_bias and
// v_bias with unbiased keys, which is the full bias with a zero key part.
TEST(VisionTransformer, BiasesQueriesKeysAndValuesOrNoneOrOnlyQueriesAndValuesAsBeit) {
  auto options = small_model();
  options.encodings = {"learned1d"};
  options.qkv_bias = "qv";
  torch::manual_seed(4);
  VisionTransformer beit(options);
  options.qkv_bias = "qkv";
  VisionTransformer full(options);
  options.qkv_bias = "none";
  VisionTransformer none(options);
  EXPECT_FALSE(none->named_parameters().contains("blocks.0.attn.qkv.bias"));
  const auto beit_parameters = beit->named_parameters();
  EXPECT_FALSE(beit_parameters.contains("blocks.0.attn.qkv.bias"));
  ASSERT_TRUE(beit_parameters.contains("blocks.1.attn.q_bias"));
  torch::NoGradGuard no_grad;
  for (auto& [name, parameter] : full->named_parameters().pairs()) {
    if (beit_parameters.contains(name))
      parameter.copy_(beit_parameters[name]);
  }
  for (const std::string block : {"0", "1"}) {
    auto q = beit_parameters["blocks." + block + ".attn.q_bias"].normal_();
    auto v = beit_parameters["blocks." + block + ".attn.v_bias"].normal_();
    full->named_parameters()["blocks." + block + ".attn.qkv.bias"].copy_(
        torch::cat({q, torch::zeros_like(q), v}));
  }
  beit->eval();
  full->eval();
  const auto images = torch::randn({2, 1, 28, 28});
  EXPECT_TRUE(torch::allclose(beit->forward(images), full->forward(images), 1e-5, 1e-5));
  EXPECT_EQ(none->forward(images).sizes(), (std::vector<int64_t>{2, 10}));
  expect_error_containing([] { VisionTransformerOptions::from_json({{"qkv_bias", "kv"}}); },
                          {"qkv_bias", "'qv'", "'kv'"});
}

TEST(VisionTransformer, PresetsMatchTheirPapers) {
  const auto tiny = VisionTransformerOptions::preset("tiny");
  EXPECT_EQ(std::make_tuple(tiny.dim, tiny.depth, tiny.heads, tiny.patch_size),
            std::make_tuple(192, 12, 3, 16));
  const auto small = VisionTransformerOptions::preset("small");
  EXPECT_EQ(std::make_tuple(small.dim, small.depth, small.heads), std::make_tuple(384, 12, 6));
  const auto micro = VisionTransformerOptions::preset("micro");
  EXPECT_EQ(std::make_tuple(micro.dim, micro.depth, micro.heads, micro.patch_size),
            std::make_tuple(96, 6, 3, 4));
  const auto nano = VisionTransformerOptions::preset("nano");
  EXPECT_EQ(std::make_tuple(nano.dim, nano.depth, nano.heads, nano.patch_size),
            std::make_tuple(64, 4, 2, 4));
  EXPECT_EQ(micro.encodings, std::vector<std::string>{"peg"});
  EXPECT_EQ(micro.conditional_after_blocks, std::vector<int64_t>{0});
}

TEST(VisionTransformer, StochasticDepthOnlyActsInTraining) {
  auto options = small_model();
  options.drop_path = 0.5;
  VisionTransformer model(options);
  auto images = torch::randn({8, 1, 28, 28});
  model->eval();
  EXPECT_TRUE(torch::equal(model->forward(images), model->forward(images)));
  model->train();
  EXPECT_FALSE(torch::equal(model->forward(images), model->forward(images)));
}

}  // namespace
}  // namespace posenc
