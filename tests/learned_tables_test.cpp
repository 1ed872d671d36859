// Learned absolute tables (Embed-1D, Embed-2D) and their resampling to other grids.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "posenc/encoding_registry.h"
#include "posenc/grid_table_resampling.h"
#include "support/test_encodings.h"

namespace posenc {
namespace {

using testing::expect_error_containing;
using testing::parameter;

torch::Tensor embedding_of(PositionalEncoding& encoding, const TokenGrid& grid) {
  return encoding->forward(torch::zeros({1, grid.total_tokens(), encoding->dim()}), grid);
}

TEST(Learned1d, IsTheTableItselfAtTheTrainedGrid) {
  const TokenGrid trained{5, 6, 1};
  auto encoding = make_encoding("learned1d", {8, trained});
  auto table = parameter(encoding, "pos_embed");
  EXPECT_EQ(table.sizes(), (std::vector<int64_t>{1, 31, 8}));
  EXPECT_TRUE(torch::equal(resample_grid_table(table, trained, trained), table));
  EXPECT_TRUE(torch::equal(embedding_of(encoding, trained), table));
}

TEST(Learned1d, ResamplesTheGridPartBicubicallyAndKeepsPrefixRows) {
  const TokenGrid trained{4, 4, 1};
  auto encoding = make_encoding("learned1d", {8, trained});
  torch::NoGradGuard no_grad;
  auto table = parameter(encoding, "pos_embed");
  // A table constant over the grid stays constant after resampling (interpolation weights sum to
  // one); the prefix row keeps its own value.
  table.narrow(1, 1, 16).fill_(0.25);
  table.narrow(1, 0, 1).fill_(-3.0);
  for (const TokenGrid grid : {TokenGrid{7, 9, 1}, TokenGrid{2, 3, 1}, TokenGrid{1, 1, 1}}) {
    auto pe = embedding_of(encoding, grid);
    EXPECT_EQ(pe.size(1), grid.total_tokens());
    EXPECT_TRUE(torch::allclose(pe.narrow(1, 0, 1), torch::full({1, 1, 8}, -3.0)));
    EXPECT_TRUE(torch::allclose(pe.narrow(1, 1, grid.grid_tokens()),
                                torch::full({1, grid.grid_tokens(), 8}, 0.25), 1e-5, 1e-5))
        << grid.describe();
  }
  // Upsampling 2x a table that is linear along the rows keeps it linear between the cell centres.
  auto rows = torch::arange(4).to(torch::kFloat32).reshape({1, 4, 1, 1}).expand({1, 4, 4, 8});
  table.narrow(1, 1, 16).copy_(rows.reshape({1, 16, 8}));
  auto pe = embedding_of(encoding, {8, 4, 1}).narrow(1, 1, 32).reshape({8, 4, 8});
  // new row r samples old row (r + 0.5) / 2 - 0.5; the cubic's 4 taps of rows 3 and 4 stay inside
  // the table, away from the clamped edges
  for (int64_t r = 3; r <= 4; ++r) {
    EXPECT_NEAR(pe[r][1][0].item<float>(), (r + 0.5) / 2 - 0.5, 1e-4) << "row " << r;
  }
}

TEST(Learned1d, RejectsAnotherPrefixCountThanTrained) {
  auto encoding = make_encoding("learned1d", {8, {4, 4, 1}});
  expect_error_containing(
      [&] {
        encoding->forward(torch::zeros({1, 16, 8}), TokenGrid{4, 4, 0});
      },
      {"1 prefix token rows", "0 prefix tokens"});
}

TEST(Learned2d, ConcatenatesRowAndColumnEmbeddings) {
  const TokenGrid trained{3, 4, 1};
  auto encoding = make_encoding("learned2d", {6, trained});
  auto rows = parameter(encoding, "row_embed");
  auto columns = parameter(encoding, "col_embed");
  EXPECT_EQ(rows.sizes(), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(columns.sizes(), (std::vector<int64_t>{4, 3}));
  auto pe = embedding_of(encoding, trained).squeeze(0);
  EXPECT_TRUE(torch::equal(pe[0], torch::zeros({6})));
  for (int64_t i = 0; i < 3; ++i) {
    for (int64_t j = 0; j < 4; ++j) {
      EXPECT_TRUE(torch::equal(pe[1 + i * 4 + j], torch::cat({rows[i], columns[j]})));
    }
  }
}

TEST(Learned2d, IndexPolicyUsesLeadingRowsAndRefusesLargerGrids) {
  auto encoding = make_encoding("learned2d:resize=index", {6, {3, 4, 0}});
  auto pe = embedding_of(encoding, {2, 2, 0}).squeeze(0);
  auto rows = parameter(encoding, "row_embed");
  auto columns = parameter(encoding, "col_embed");
  EXPECT_TRUE(torch::equal(pe[3], torch::cat({rows[1], columns[1]})));
  expect_error_containing(
      [&] {
        embedding_of(encoding, {5, 2, 0});
      },
      {"3 rows", "grid has 5", "resize=interpolate"});
}

TEST(Learned2d, InterpolatePolicyStretchesTheTablesToAnyGrid) {
  auto encoding = make_encoding("learned2d", {4, {3, 3, 0}});
  {
    torch::NoGradGuard no_grad;
    parameter(encoding, "row_embed").fill_(1.5);
    parameter(encoding, "col_embed")
        .copy_(torch::arange(3).to(torch::kFloat32).unsqueeze(1).expand({3, 2}));
  }
  auto pe = embedding_of(encoding, {5, 6, 0}).squeeze(0).reshape({5, 6, 4});
  EXPECT_TRUE(torch::allclose(pe.narrow(2, 0, 2), torch::full({5, 6, 2}, 1.5)));
  // columns 0..2 stretched to 6 cells: centre of new column c maps to old (c + 0.5) / 2 - 0.5,
  // clamped to the table's ends
  for (int64_t c = 0; c < 6; ++c) {
    const double expected = std::clamp((c + 0.5) / 2 - 0.5, 0.0, 2.0);
    EXPECT_NEAR(pe[2][c][2].item<float>(), expected, 1e-5) << "column " << c;
  }
}

}  // namespace
}  // namespace posenc
