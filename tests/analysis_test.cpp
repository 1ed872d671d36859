// What `posenc attention` and `posenc probe` compute: the classifier's attention maps, the mean
// attention distance, the positional signal of additive and conditional encodings, the
// similarity-distance correlation, and the pictures they are drawn into.
#include <cmath>
#include <filesystem>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "posenc/analysis/attention_maps.h"
#include "posenc/analysis/encoding_similarity.h"
#include "posenc/analysis/tile_canvas.h"
#include "posenc/models/vision_transformer.h"
#include "support/temporary_folder.h"
#include "support/test_encodings.h"

namespace posenc {
namespace {

using testing::expect_error_containing;

VisionTransformerOptions inspected_model(const std::string& head, const std::string& encoding) {
  auto options = VisionTransformerOptions::preset("nano");
  options.dim = 16;
  options.depth = 2;
  options.heads = 2;
  options.drop_path = 0.0;
  options.head = head;
  options.encodings = {encoding};
  return options;
}

TEST(AttentionMaps, AreTheHeadAveragedRowsOfTheClassifyingQuery) {
  torch::manual_seed(0);
  const auto images = torch::randn({3, 1, 28, 20});  // a 7x5 grid
  for (const std::string head : {"token", "gap"}) {
    VisionTransformer model(inspected_model(head, "learned1d"));
    const auto maps = classifier_attention_maps(model, images);
    ASSERT_EQ(maps.sizes(), (std::vector<int64_t>{2, 3, 7, 5})) << head;
    model->record_attention(true);
    model->forward(images);
    const int64_t prefix = head == "token" ? 1 : 0;
    for (int64_t b = 0; b < 2; ++b) {
      const auto averaged = model->last_attention()[b].mean(1);  // (B, N, N)
      const auto expected = (head == "token" ? averaged.select(1, 0) : averaged.mean(1))
                                .narrow(1, prefix, 35)
                                .reshape({3, 7, 5});
      EXPECT_TRUE(torch::allclose(maps[b], expected, 1e-6, 1e-7)) << head << " block " << b;
    }
    const auto totals = maps.sum({2, 3});
    EXPECT_TRUE((totals > 0).all().item<bool>());
    EXPECT_TRUE((totals <= 1.0 + 1e-5).all().item<bool>());
    if (head == "gap")  // no prefix token takes a share: each map sums to one
      EXPECT_TRUE(torch::allclose(totals, torch::ones_like(totals), 1e-5));
  }
}

TEST(AttentionMaps, UniformAttentionHasTheMeanDistanceBetweenCells) {
  VisionTransformer model(inspected_model("gap", "none"));
  {
    torch::NoGradGuard no_grad;
    for (auto& item : model->named_parameters()) {
      if (item.key().find("attn.qkv.") != std::string::npos)
        item.value().zero_();  // q.k = 0: every token attends all tokens equally
    }
  }
  const auto distances = mean_attention_distance(model, torch::randn({2, 1, 12, 16}));  // 3x4
  const auto cells = grid_cell_positions(3, 4);
  const double expected = torch::cdist(cells, cells).mean().item<double>();
  ASSERT_EQ(distances.size(), 2u);
  for (double distance : distances)
    EXPECT_NEAR(distance, expected, 1e-5);
}

TEST(PositionalSignal, OfAnAdditiveEncodingIsItsEmbeddingWhateverTheImages) {
  VisionTransformer model(inspected_model("token", "learned1d"));
  const auto signal = model->positional_signal(torch::randn({4, 1, 28, 28}));
  const auto table = model->named_parameters()["additive_encodings.0.pos_embed"];
  ASSERT_EQ(signal.sizes(), (std::vector<int64_t>{49, 16}));
  EXPECT_TRUE(torch::allclose(signal, table[0].narrow(0, 1, 49)));
  EXPECT_TRUE(torch::equal(signal, model->positional_signal(torch::zeros({1, 1, 28, 28}))));
}

TEST(PositionalSignal, OfPegShowsTheBorderThroughZeroPadding) {
  auto options = inspected_model("gap", "peg");
  options.conditional_after_blocks = {-1};  // on the patch embeddings themselves
  VisionTransformer model(options);
  {
    torch::NoGradGuard no_grad;
    for (auto& item : model->named_parameters()) {
      if (item.key().rfind("conditional_encodings.0.", 0) == 0)
        item.value().copy_(item.key().find("weight") != std::string::npos
                               ? torch::ones_like(item.value())
                               : torch::zeros_like(item.value()));
      if (item.key() == "patch_embed.proj.bias")
        item.value().copy_(torch::linspace(-1.0, 1.0, item.value().numel()));
    }
  }
  // blank images: every patch token is the patch embedding's bias t, so a 3x3 box filter of ones
  // adds (number of cells of the 3x3 window inside the grid) x t
  const auto signal = model->positional_signal(torch::zeros({2, 1, 20, 20})).view({5, 5, 16});
  const auto token = signal[2][2] / 9.0;
  EXPECT_TRUE(torch::allclose(signal[0][0], token * 4.0, 1e-5, 1e-6)) << "corner";
  EXPECT_TRUE(torch::allclose(signal[0][2], token * 6.0, 1e-5, 1e-6)) << "edge";
  EXPECT_TRUE(torch::allclose(signal[1][1], token * 9.0, 1e-5, 1e-6)) << "inside";
  EXPECT_GT(token.abs().sum().item<double>(), 0.0);

  expect_error_containing(
      [] {
        VisionTransformer plain(inspected_model("token", "none"));
        plain->positional_signal(torch::zeros({1, 1, 28, 28}));
      },
      {"no positional encoding"});
}

TEST(PositionalSignal, OfPegAfterBlocksIgnoresStochasticDepthAndKeepsTheTrainingMode) {
  auto options = inspected_model("token", "peg");
  options.drop_path = 0.9;
  options.conditional_after_blocks = {1};
  VisionTransformer model(options);
  model->train();
  const auto images = torch::randn({3, 1, 28, 28});
  const auto first = model->positional_signal(images);
  EXPECT_TRUE(torch::equal(first, model->positional_signal(images)));
  EXPECT_TRUE(model->is_training());
}

TEST(EncodingSimilarity, CorrelationIsMinusOneWhenSimilarityFallsLinearlyWithDistance) {
  const auto cells = grid_cell_positions(4, 6);
  ASSERT_EQ(cells.sizes(), (std::vector<int64_t>{24, 2}));
  EXPECT_TRUE(torch::equal(cells[7], torch::tensor({1.0f, 1.0f})));
  const auto distance = torch::cdist(cells, cells);
  EXPECT_NEAR(similarity_distance_correlation(-distance, cells), -1.0, 1e-9);
  EXPECT_NEAR(similarity_distance_correlation(distance * 3 + 1, cells), 1.0, 1e-9);
  EXPECT_LT(similarity_distance_correlation(torch::exp(-distance), cells), -0.8);
  EXPECT_EQ(similarity_distance_correlation(torch::ones({24, 24}), cells), 0.0);  // no spread
  // no pairs (1x1), one pair (1x2): undefined rather than a 0 that reads as "unrelated"
  EXPECT_TRUE(std::isnan(similarity_distance_correlation(torch::ones({1, 1}),
                                                         grid_cell_positions(1, 1))));
  EXPECT_TRUE(std::isnan(similarity_distance_correlation(torch::eye(2), grid_cell_positions(1, 2))));
  expect_error_containing([&] { similarity_distance_correlation(distance, cells.narrow(0, 0, 5)); },
                          {"positions must be (P, M)"});
}

// posenc demo (untrained encodings) and posenc probe (trained models) report this one number, so
// that their signs agree: a sinusoidal table's nearer cells look more alike.
TEST(EncodingSimilarity, SignalDistanceCorrelationIsNegativeWhereNearerCellsLookAlike) {
  const int64_t height = 5, width = 6;
  const auto cells = grid_cell_positions(height, width);  // (30, 2)
  const auto smooth = torch::cat({torch::cos(cells * 0.3), torch::sin(cells * 0.3)}, 1);
  const double correlation = signal_distance_correlation(smooth + 4.0, height, width);
  EXPECT_LT(correlation, -0.5);
  EXPECT_NEAR(correlation,
              similarity_distance_correlation(
                  cosine_similarity_matrix(smooth - smooth.mean(0, true)), cells),
              1e-6);  // the shared offset is removed (float32 similarities)
  torch::manual_seed(0);
  EXPECT_GT(signal_distance_correlation(torch::randn({30, 4}), height, width), -0.5);  // no order
  expect_error_containing([&] { signal_distance_correlation(smooth, 6, 6); },
                          {"(6*6, C)", "[30, 4]"});
}

TEST(EncodingSimilarity, CosineSimilarityIsOneOnTheDiagonalAndIgnoresLength) {
  const auto signal = torch::tensor({{1.0f, 0.0f}, {5.0f, 0.0f}, {0.0f, 2.0f}, {0.0f, 0.0f}});
  const auto similarity = cosine_similarity_matrix(signal);
  const auto expected =
      torch::tensor({{1.0f, 1.0f, 0.0f, 0.0f},
                     {1.0f, 1.0f, 0.0f, 0.0f},
                     {0.0f, 0.0f, 1.0f, 0.0f},
                     {0.0f, 0.0f, 0.0f, 0.0f}});  // a zero vector is similar to none
  EXPECT_TRUE(torch::allclose(similarity, expected));
}

TEST(TileCanvas, DrawsHeatMapsWithTheViridisEndsInsideTheGaps) {
  TileCanvas canvas(1, 2, 4, 4, /*gap=*/1);
  ASSERT_EQ(canvas.height(), 6);
  ASSERT_EQ(canvas.width(), 11);
  // a 2x2 map scaled to 4x4: each cell is a 2x2 block; values below low and above high clamp
  canvas.draw_heat_map(0, 1, torch::tensor({{-5.0f, 0.5f}, {1.0f, 9.0f}}), 0.0, 1.0);
  EXPECT_EQ(canvas.pixel(1, 6), (std::vector<uint8_t>{68, 1, 84}));      // low end
  EXPECT_EQ(canvas.pixel(2, 9), (std::vector<uint8_t>{33, 145, 140}));   // the middle
  EXPECT_EQ(canvas.pixel(4, 9), (std::vector<uint8_t>{253, 231, 37}));   // high end
  EXPECT_EQ(canvas.pixel(0, 6), (std::vector<uint8_t>{255, 255, 255}));  // gap stays white
  canvas.draw_image(0, 0, torch::full({1, 3, 3}, 0.5));
  EXPECT_EQ(canvas.pixel(3, 2), (std::vector<uint8_t>{128, 128, 128}));

  expect_error_containing(
      [&] {
        canvas.draw_heat_map(1, 0, torch::zeros({2, 2}), 0, 1);
      },
      {"outside"});
  expect_error_containing(
      [&] {
        canvas.draw_heat_map(0, 0, torch::zeros({2, 2}), 1, 1);
      },
      {"range"});
  expect_error_containing(
      [&] {
        canvas.draw_image(0, 0, torch::zeros({2, 3, 3}));
      },
      {"(1 or 3, h, w)"});
  testing::TemporaryFolder folder;
  canvas.write_png(folder.path("tiles.png"));
  EXPECT_GT(std::filesystem::file_size(folder.path("tiles.png")), 0u);
  expect_error_containing([&] { canvas.write_png(folder.path("missing/tiles.png")); },
                          {"cannot write", "missing/tiles.png"});
}

}  // namespace
}  // namespace posenc
