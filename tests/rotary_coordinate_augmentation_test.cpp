// DINOv3's training-time augmentation of the rotary encodings' grid coordinates (shift_coords,
// jitter_coords, rescale_coords): what one draw does to the angles, how draws are distributed,
// that a model draws once per training step for all its blocks and never in evaluation, and the
// errors where it cannot apply.
#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "posenc/encoding_registry.h"
#include "posenc/models/set_transformer.h"
#include "posenc/models/vision_transformer.h"
#include "support/test_encodings.h"

namespace posenc {
namespace {

using testing::expect_error_containing;

RotaryEncodingImpl& as_rotary(PositionalEncoding& encoding) {
  auto* rotary = dynamic_cast<RotaryEncodingImpl*>(encoding.get());
  EXPECT_NE(rotary, nullptr);
  return *rotary;
}

// An augmented grid turns by the angles its transformed coordinates give as explicit positions:
// x -> (x + shift_x) * scale_x, y -> (y + shift_y) * scale_y, for every rotary encoding that takes
// the augmentation (rope_lff reads a grid's positions as (row, column), the others as (x, y)).
TEST(RotaryCoordinateAugmentation, TurnsAGridByTheAnglesOfItsTransformedCoordinates) {
  const CoordinateAugmentation draw{0.25, -0.5, 1.5, 0.75};
  const auto options = torch::TensorOptions(torch::kFloat64);
  const TokenGrid grid{3, 4, 1};
  for (const std::string type : {"rope_axial", "rope_mixed", "rope_lff"}) {
    SCOPED_TRACE(type);
    torch::manual_seed(2);
    auto encoding = make_encoding(type, {16, {3, 4, 1}, 2});
    encoding->to(torch::kFloat64);
    auto& rotary = as_rotary(encoding);
    const auto rows = torch::arange(3, options).repeat_interleave(4);  // row-major tokens
    const auto columns = torch::arange(4, options).repeat(3);
    const auto x = (columns + draw.shift_x) * draw.scale_x;
    const auto y = (rows + draw.shift_y) * draw.scale_y;
    const auto positions =
        (type == "rope_lff" ? torch::stack({y, x}, -1) : torch::stack({x, y}, -1))
            .view({1, 12, 1, 2});
    const auto plain = rotary.angles(grid, options).clone();  // fills the caches
    const auto augmented = rotary.angles(grid, options, draw);
    EXPECT_TRUE(torch::allclose(augmented, rotary.angles(TokenLayout::at_positions(positions),
                                                         options),
                                1e-12, 1e-12));
    EXPECT_FALSE(torch::allclose(augmented, plain, 1e-3, 1e-3));
    // the cached unaugmented angles and coordinates are left as they were
    EXPECT_TRUE(torch::equal(rotary.angles(grid, options), plain));
  }
}

// As DINOv3 draws them: a uniform shift in [-s, s] per axis, a log-uniform jitter in [1/j, j] per
// axis, one log-uniform rescale in [1/r, r] for both axes; none in eval mode or with the defaults.
TEST(RotaryCoordinateAugmentation, DrawsDinoV3sShiftJitterAndRescaleOnlyWhileTraining) {
  auto encoding = make_encoding("rope_axial:coords=normalized,shift_coords=0.5,jitter_coords=2",
                                {16, {4, 4, 0}, 2});
  auto& rotary = as_rotary(encoding);
  EXPECT_TRUE(rotary.augments_coordinates());
  encoding->eval();
  EXPECT_TRUE(rotary.draw_coordinate_augmentation().is_identity());
  encoding->train();
  torch::manual_seed(8);
  double smallest_shift = 1.0, largest_shift = -1.0, smallest_log_scale = 1.0;
  double largest_log_scale = -1.0;
  for (int i = 0; i < 2000; ++i) {
    const auto draw = rotary.draw_coordinate_augmentation();
    for (const double shift : {draw.shift_x, draw.shift_y}) {
      smallest_shift = std::min(smallest_shift, shift);
      largest_shift = std::max(largest_shift, shift);
    }
    for (const double scale : {draw.scale_x, draw.scale_y}) {
      smallest_log_scale = std::min(smallest_log_scale, std::log(scale));
      largest_log_scale = std::max(largest_log_scale, std::log(scale));
    }
  }
  EXPECT_GE(smallest_shift, -0.5);
  EXPECT_LT(smallest_shift, -0.49);
  EXPECT_LE(largest_shift, 0.5);
  EXPECT_GT(largest_shift, 0.49);
  EXPECT_GE(smallest_log_scale, -std::log(2.0));
  EXPECT_LT(smallest_log_scale, -0.99 * std::log(2.0));
  EXPECT_LE(largest_log_scale, std::log(2.0));
  EXPECT_GT(largest_log_scale, 0.99 * std::log(2.0));
  // the same seed gives the same draw
  torch::manual_seed(8);
  const auto first = rotary.draw_coordinate_augmentation();
  torch::manual_seed(8);
  EXPECT_EQ(rotary.draw_coordinate_augmentation().scale_y, first.scale_y);

  // the rescale is one factor for both axes
  auto rescaled = make_encoding("rope_axial:rescale_coords=3", {16, {4, 4, 0}, 2});
  rescaled->train();
  for (int i = 0; i < 200; ++i) {
    const auto draw = as_rotary(rescaled).draw_coordinate_augmentation();
    ASSERT_EQ(draw.scale_x, draw.scale_y);
    ASSERT_LE(std::abs(std::log(draw.scale_x)), std::log(3.0));
    ASSERT_EQ(draw.shift_x, 0.0);
  }
  auto plain = make_encoding("rope_mixed", {16, {4, 4, 0}, 2});
  plain->train();
  EXPECT_FALSE(as_rotary(plain).augments_coordinates());
  EXPECT_TRUE(as_rotary(plain).draw_coordinate_augmentation().is_identity());
}

// A ViT draws one augmentation per training forward, from the generator the training loop seeds
// and checkpoints, and hands it to every block; in evaluation it is the model without the options.
TEST(RotaryCoordinateAugmentation, AVisionTransformerDrawsOncePerTrainingStepAndNeverInEval) {
  const auto augmented_options = testing::two_block_vit_options(
      {"rope_axial:coords=normalized,shift_coords=0.5,jitter_coords=1.5,rescale_coords=2"});
  torch::manual_seed(1);
  VisionTransformer augmented(augmented_options);
  torch::manual_seed(1);
  VisionTransformer plain(testing::two_block_vit_options({"rope_axial:coords=normalized"}));
  {
    torch::NoGradGuard no_grad;
    for (auto& [name, parameter] : augmented->named_parameters().pairs())
      parameter.copy_(plain->named_parameters()[name]);
  }
  const auto images = torch::randn({2, 1, 28, 28});
  augmented->eval();
  plain->eval();
  EXPECT_TRUE(torch::equal(augmented->forward(images), plain->forward(images)));

  augmented->train();
  plain->train();
  const auto& first_block_encoding =
      *augmented->named_modules()["rotary_encodings.0"]->as<RotaryEncodingImpl>();
  torch::manual_seed(5);
  const auto step = augmented->forward(images);
  const auto after_step = torch::rand({1}, torch::kFloat64).item<double>();
  torch::manual_seed(5);
  const auto draw = first_block_encoding.draw_coordinate_augmentation();
  EXPECT_FALSE(draw.is_identity());
  EXPECT_EQ(torch::rand({1}, torch::kFloat64).item<double>(), after_step)
      << "the step drew more (or less) than one augmentation";
  torch::manual_seed(5);
  EXPECT_TRUE(torch::equal(augmented->forward(images), step)) << "a seed replays a step";
  EXPECT_FALSE(torch::allclose(augmented->forward(images), step, 1e-4, 1e-4))
      << "the next step draws again";
  EXPECT_FALSE(torch::allclose(step, plain->forward(images), 1e-4, 1e-4));
}

TEST(RotaryCoordinateAugmentation, SaysWhereAndWithWhatValuesItApplies) {
  const EncodingContext context{16, {4, 4, 0}, 2};
  expect_error_containing([&] { make_encoding("rope_axial:shift_coords=-1", context); },
                          {"rope_axial shift_coords", ">= 0", "-1"});
  expect_error_containing([&] { make_encoding("rope_mixed:jitter_coords=0.5", context); },
                          {"rope_mixed jitter_coords", ">= 1", "0.5"});
  expect_error_containing([&] { make_encoding("rope_lff:rescale_coords=0.9", context); },
                          {"rope_lff rescale_coords", ">= 1", "0.9"});
  // explicit positions are used as given, even while training
  auto encoding = make_encoding("rope_lff:shift_coords=0.1", context);
  encoding->train();
  const auto layout = TokenLayout::at_positions(torch::rand({1, 3, 1, 2}));
  expect_error_containing([&] { encoding->forward(torch::randn({1, 3, 16}), layout); },
                          {"rope_lff", "explicit positions are used as given", "0, 1, 1"});
  encoding->eval();
  EXPECT_EQ(encoding->forward(torch::randn({1, 3, 16}), layout).sizes(),
            (std::vector<int64_t>{1, 3, 16}));
  SetTransformerOptions set_options;
  set_options.encodings = {"rope_axial:rescale_coords=2"};
  expect_error_containing([&] { SetTransformer model(set_options); },
                          {"set model", "rope_axial", "sets have explicit positions"});
}

}  // namespace
}  // namespace posenc
