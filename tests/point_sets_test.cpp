// Token sets at continuous positions (LFF RQ1 and RQ4): the generated nearest-neighbour and layout
// tasks, the JSONL reader and its errors, the SetTransformer, its training and the
// similarity-distance probe.
#include <fstream>
#include <tuple>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "posenc/data/layout_task.h"
#include "posenc/data/nearest_neighbour_task.h"
#include "posenc/data/set_task_source.h"
#include "posenc/data/token_sets_jsonl.h"
#include "posenc/encoding_registry.h"
#include "posenc/models/set_transformer.h"
#include "posenc/train/checkpoint.h"
#include "posenc/train/set_training.h"
#include "support/child_process.h"
#include "support/temporary_folder.h"
#include "support/test_encodings.h"

namespace posenc {
namespace {

using testing::expect_error_containing;

NearestNeighbourTaskOptions small_nearest_neighbour(int64_t sets, uint64_t seed = 0) {
  NearestNeighbourTaskOptions options;
  options.sets = sets;
  options.points = 7;
  options.labels = 4;
  options.seed = seed;
  return options;
}

TEST(NearestNeighbourTask, EachTargetIsTheLabelOfTheNearestOtherPoint) {
  const auto data = make_nearest_neighbour_sets(small_nearest_neighbour(50));
  data.validate("nearest-neighbour");
  ASSERT_EQ(data.positions.sizes(), (std::vector<int64_t>{50, 7, 1, 2}));
  const auto labels = data.content.argmax(2);  // content is the one-hot label
  EXPECT_TRUE(data.content.sum(2).eq(1).all().item<bool>());
  const auto points = data.positions.squeeze(2).to(torch::kFloat64);  // (S, K, 2)
  auto distances = torch::cdist(points, points);
  distances = distances + torch::eye(7, torch::kFloat64) * 1e9;  // a point is not its neighbour
  const auto nearest = distances.argmin(2);                      // (S, K)
  EXPECT_TRUE(labels.gather(1, nearest).eq(data.targets).all().item<bool>());
  EXPECT_TRUE(data.positions.ge(0).all().item<bool>() && data.positions.lt(1).all().item<bool>());
}

TEST(NearestNeighbourTask, ASeedGivesTheSameSetsAtEveryRangeMappedAffinely) {
  const auto unit = make_nearest_neighbour_sets(small_nearest_neighbour(20, 3));
  EXPECT_TRUE(
      make_nearest_neighbour_sets(small_nearest_neighbour(20, 3)).positions.equal(unit.positions));
  EXPECT_FALSE(
      make_nearest_neighbour_sets(small_nearest_neighbour(20, 4)).positions.equal(unit.positions));
  auto shifted_options = small_nearest_neighbour(20, 3);
  shifted_options.range = CoordinateRange::parse("1:3");
  const auto shifted = make_nearest_neighbour_sets(shifted_options);
  EXPECT_TRUE(torch::allclose(shifted.positions, 1.0 + 2.0 * unit.positions, 0, 1e-5));
  EXPECT_TRUE(shifted.targets.equal(unit.targets));
  EXPECT_TRUE(shifted.content.equal(unit.content));
}

TEST(LayoutTask, ScreensHoldNonOverlappingBoxesWhoseTargetsLieToTheRight) {
  LayoutTaskOptions options;
  options.screens = 40;
  const auto data = make_layout_screens(options);
  data.validate("layout");
  ASSERT_EQ(data.positions.sizes(), (std::vector<int64_t>{40, 20, 2, 2}));
  const int64_t none = options.widget_types;
  int64_t differs_from_nearest_centre = 0, widgets = 0;
  for (int64_t s = 0; s < 40; ++s) {
    const auto real = data.mask[s].nonzero().squeeze(1);
    const auto boxes = data.positions[s].index_select(0, real).flatten(1);  // (W, 4)
    const auto types = data.content[s].index_select(0, real).argmax(1);
    const auto targets = data.targets[s].index_select(0, real);
    const auto count = boxes.size(0);
    auto box = boxes.accessor<float, 2>();
    // rows: 2 .. 5, each ending in exactly one widget without a right neighbour
    const auto rows = targets.eq(none).sum().item<int64_t>();
    EXPECT_GE(rows, 2);
    EXPECT_LE(rows, 5);
    const auto centres = (boxes.narrow(1, 0, 2) + boxes.narrow(1, 2, 2)) / 2;
    auto distances = torch::cdist(centres, centres) + torch::eye(count) * 1e9;
    const auto nearest = distances.argmin(1);
    for (int64_t i = 0; i < count; ++i) {
      EXPECT_LT(box[i][0], box[i][2]);
      EXPECT_LT(box[i][1], box[i][3]);
      for (int64_t j = 0; j < count; ++j) {
        const bool apart = box[i][2] <= box[j][0] || box[j][2] <= box[i][0] ||
                           box[i][3] <= box[j][1] || box[j][3] <= box[i][1];
        EXPECT_TRUE(i == j || apart) << "screen " << s << ": boxes " << i << " and " << j;
      }
      const auto target = targets[i].item<int64_t>();
      if (target != none) {
        bool found = false;
        for (int64_t j = 0; j < count; ++j)
          found = found || (types[j].item<int64_t>() == target && box[j][0] >= box[i][2]);
        EXPECT_TRUE(found) << "screen " << s << ": no widget of the target type to the right";
      }
      differs_from_nearest_centre += types[nearest[i]].item<int64_t>() != target;
      ++widgets;
    }
  }
  // the relation is not "the type of the nearest centre"
  EXPECT_GT(differs_from_nearest_centre, widgets / 2);
}

TEST(SetTaskSource, TestSetsComeFromAnotherStreamThanTrainingSets) {
  SetTaskSource source;
  source.train_sets = 10;
  source.test_sets = 10;
  EXPECT_FALSE(source.load("train").positions.equal(source.load("test").positions));
  EXPECT_TRUE(source.load("test").positions.equal(source.load("test").positions));
  source.task = "layout";
  EXPECT_EQ(source.load("test").groups(), 2);
  source.task = "sorting";
  expect_error_containing([&] { source.load("train"); }, {"sorting", "nearest-neighbour, layout"});
  source.task = "nearest-neighbour";
  source.points = 100000;  // ran for hours without a line of output
  expect_error_containing([&] { source.validate(); },
                          {"--points 100000 is more than the 1024 points", "square"});
}

TEST(TokenSetsJsonl, ReadsPointsAndGroupedBoxesPaddingSmallerSets) {
  const auto points = parse_token_sets_jsonl(
      "{\"positions\": [[0.1, 0.2], [0.5, 0.9]], \"content\": [[1, 0], [0, 1]], "
      "\"targets\": [1, 0]}\n"
      "\n"
      "{\"positions\": [[0.3, 0.3]], \"content\": [[0.5, 0.5]], \"targets\": [3]}\n",
      "points.jsonl");
  ASSERT_EQ(points.positions.sizes(), (std::vector<int64_t>{2, 2, 1, 2}));
  EXPECT_EQ(points.classes, 4);
  EXPECT_FLOAT_EQ(points.positions[0][1][0][1].item<float>(), 0.9f);
  EXPECT_TRUE(points.mask.equal(torch::tensor({{true, true}, {true, false}})));
  EXPECT_TRUE(points.targets.equal(torch::tensor({{1, 0}, {3, -1}}, torch::kLong)));

  const auto boxes = parse_token_sets_jsonl(
      "{\"positions\": [[[0, 0], [0.2, 0.1]], [[0.3, 0], [0.9, 0.1]]], \"content\": [[1], [2]], "
      "\"targets\": [1, null]}",
      "boxes.jsonl");
  ASSERT_EQ(boxes.positions.sizes(), (std::vector<int64_t>{1, 2, 2, 2}));
  EXPECT_FLOAT_EQ(boxes.positions[0][1][1][0].item<float>(), 0.9f);
  EXPECT_EQ(boxes.targets[0][1].item<int64_t>(), -1);
  EXPECT_EQ(boxes.with_position_shape(1, 4).positions.sizes(), (std::vector<int64_t>{1, 2, 1, 4}));
}

TEST(TokenSetsJsonl, MalformedLinesAreErrorsNamingTheLineAndTheReason) {
  const std::string good =
      "{\"positions\": [[0, 0], [1, 1]], \"content\": [[1], [1]], \"targets\": [0, 1]}\n";
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {good + "{\"positions\": [[0, 0]], \"content\": [[1]], \"targets\": [0]",
       {"data.jsonl line 2", "not valid JSON"}},
      {good + "{\"positions\": [[0, 0]], \"targets\": [0]}", {"line 2", "missing 'content'"}},
      {good + "\n{\"positions\": [[0, 0]], \"content\": [[1], [1]], \"targets\": [0]}",
       {"line 3", "one entry per token", "1, 2 and 1"}},
      {"{\"positions\": [[0, 1e39]], \"content\": [[1]], \"targets\": [0]}",
       {"line 1", "token 0", "not a finite float32"}},
      {"{\"positions\": [[0, 1e999]], \"content\": [[1]], \"targets\": [0]}",
       {"line 1", "not valid JSON", "overflow"}},
      {"{\"positions\": [], \"content\": [], \"targets\": []}", {"line 1", "empty"}},
      {good + "{\"positions\": [[0, 0, 0]], \"content\": [[1]], \"targets\": [0]}",
       {"line 2", "3 numbers where the file's first set has 2"}},
      {good + "{\"positions\": [[[0, 0], [1, 1]]], \"content\": [[1]], \"targets\": [0]}",
       {"line 2", "2 groups where the file's first set has 1"}},
      {good + "{\"positions\": [[0, 0]], \"content\": [[1, 2]], \"targets\": [0]}",
       {"line 2", "content has 2 numbers"}},
      {"{\"positions\": [[0, 0]], \"content\": [[1]], \"targets\": [null]}",
       {"line 1", "no token of the set has a target"}},
      {"{\"positions\": [[0, 0]], \"content\": [[1]], \"targets\": [1.5]}",
       {"line 1", "target must be a class"}},
      {"{\"positions\": [[0, \"a\"]], \"content\": [[1]], \"targets\": [0]}",
       {"line 1", "must be a number"}},
      {"{\"points\": [[0, 0]], \"content\": [[1]], \"targets\": [0]}", {"unknown key 'points'"}},
      {"\n\n", {"holds no token sets"}}};
  for (const auto& item : cases) {
    const std::string& text = item.first;  // a named copy: lambdas cannot capture bindings
    SCOPED_TRACE(text);
    expect_error_containing([&] { parse_token_sets_jsonl(text, "data.jsonl"); }, item.second);
  }
  expect_error_containing([] { read_token_sets_jsonl("/nonexistent/sets.jsonl"); },
                          {"/nonexistent/sets.jsonl", "no such file"});
}

SetTransformerOptions small_set_model(const std::string& encoding, int64_t groups = 1,
                                      int64_t values = 2) {
  SetTransformerOptions options;
  options.content_dim = 3;
  options.classes = 5;
  options.position_groups = groups;
  options.position_values = values;
  options.dim = 16;
  options.depth = 2;
  options.heads = 2;
  options.encodings = {encoding};
  return options;
}

TEST(SetTransformer, PaddingTokensChangeNothingForTheRealOnes) {
  torch::manual_seed(0);
  SetTransformer model(small_set_model("lff"));
  model->eval();
  const auto content = torch::randn({2, 4, 3});
  const auto positions = torch::rand({2, 4, 1, 2});
  const auto logits = model->forward(content, positions);
  // two padding tokens with arbitrary content and positions
  const auto padded = model->forward(
      torch::cat({content, torch::randn({2, 2, 3}) * 10}, 1),
      torch::cat({positions, torch::rand({2, 2, 1, 2}) * 5}, 1),
      torch::cat({torch::ones({2, 4}, torch::kBool), torch::zeros({2, 2}, torch::kBool)}, 1));
  EXPECT_TRUE(torch::allclose(padded.narrow(1, 0, 4), logits, 1e-5, 1e-5));
}

TEST(SetTransformer, PermutingTheTokensPermutesTheOutputs) {
  torch::manual_seed(0);
  for (const std::string encoding :
       {"lff", "sincos2d:scale=10", "learned_quantized", "none", "rope_lff", "rope_mixed"}) {
    SetTransformer model(small_set_model(encoding));
    model->eval();
    const auto content = torch::randn({2, 5, 3});
    const auto positions = torch::rand({2, 5, 1, 2});
    const auto order = torch::tensor({3, 0, 4, 1, 2}, torch::kLong);
    const auto logits = model->forward(content, positions);
    const auto permuted =
        model->forward(content.index_select(1, order), positions.index_select(1, order));
    EXPECT_TRUE(torch::allclose(permuted, logits.index_select(1, order), 1e-5, 1e-5)) << encoding;
  }
}

// A rotary encoding makes attention see only differences of positions: moving a whole set (every
// point, or both corners of every box) by one vector changes no output, where an added encoding
// changes them. (Issue 23's E9 tests what this buys on a shifted range.)
TEST(SetTransformer, WithOnlyARotaryEncodingMovingTheWholeSetChangesNoOutput) {
  const std::vector<std::tuple<std::string, int64_t, int64_t>> cases = {
      {"rope_lff", 1, 2}, {"rope_lff", 2, 2}, {"rope_lff", 1, 3}, {"rope_axial", 1, 2},
      {"rope_mixed", 1, 2}, {"lff", 1, 2}};
  for (const auto& [encoding, groups, values] : cases) {
    torch::manual_seed(0);
    SetTransformer model(small_set_model(encoding, groups, values));
    model->eval();
    const auto content = torch::randn({2, 5, 3});
    const auto positions = torch::rand({2, 5, groups, values}) * 4;
    const auto moved = positions + torch::randn({values}) * 3;  // the same vector everywhere
    const bool unchanged =
        torch::allclose(model->forward(content, positions), model->forward(content, moved),
                        1e-4, 1e-4);
    EXPECT_EQ(unchanged, encoding != "lff") << encoding << " G=" << groups << " M=" << values;
    EXPECT_EQ(model->positions_only_in_attention(), encoding != "lff") << encoding;
    // yet positions matter: spreading the set apart changes the outputs
    EXPECT_FALSE(torch::allclose(model->forward(content, positions),
                                 model->forward(content, positions * 2), 1e-4, 1e-4))
        << encoding << " G=" << groups << " M=" << values;
  }
  auto both = small_set_model("lff");
  both.encodings.push_back("rope_lff");
  EXPECT_FALSE(SetTransformer(both)->positions_only_in_attention()) << "lff is measurable";
  expect_error_containing(
      [] {
        auto options = small_set_model("rope_lff");
        options.encodings.push_back("rope_mixed");
        SetTransformer model(options);
      },
      {"one rotary encoding", "--pe lff --pe rope_mixed"});
  SetTransformer boxes(small_set_model("rope_axial", 2, 2));
  expect_error_containing(
      [&] { boxes->forward(torch::zeros({1, 3, 3}), torch::zeros({1, 3, 2, 2})); },
      {"rope_axial", "G=1, M=2", "[1, 3, 2, 2]"});
}

TEST(SetTransformer, PositionsOfTheWrongShapeOrAGridEncodingAreClearErrors) {
  SetTransformer boxes(small_set_model("lff", 2, 2));
  EXPECT_NE(boxes->options().encodings.front().find("G=2"), std::string::npos);
  EXPECT_NE(boxes->options().encodings.front().find("M=2"), std::string::npos);
  expect_error_containing(
      [&] {
        boxes->forward(torch::zeros({1, 3, 3}), torch::zeros({1, 3, 1, 4}));
      },
      {"positions have G = 1, M = 4", "the model reads G = 2, M = 2"});
  expect_error_containing([] { SetTransformer(small_set_model("lff:G=1,M=4", 2, 2)); },
                          {"lff:G=1,M=4", "G = 2, M = 2", "drop G and M"});
  expect_error_containing([] { SetTransformer(small_set_model("peg")); },
                          {"peg", "sets have no grid", "lff"});
  expect_error_containing([] { SetTransformer(small_set_model("learned2d")); },
                          {"learned2d", "token grid", "learned_quantized"});
  TokenSets data = make_nearest_neighbour_sets(small_nearest_neighbour(2));
  expect_error_containing([&] { data.with_position_shape(1, 3); },
                          {"G = 1 groups of M = 2", "G = 1, M = 3"});
  SetTransformer points(small_set_model("lff"));
  expect_error_containing(
      [&] {
        points->forward(torch::zeros({1, 2, 3}), torch::zeros({1, 2, 1, 2}),
                        torch::zeros({1, 2}, torch::kBool));
      },
      {"no real token"});
  expect_error_containing(
      [&] {
        points->forward(torch::zeros({1, 2, 3}),
                        torch::tensor({0.0f, NAN, 0.0f, 0.0f}).view({1, 2, 1, 2}));
      },
      {"finite"});
}

TEST(SetTraining, DataThatDoesNotFitTheModelIsAnErrorNamingTheData) {
  const auto data = make_nearest_neighbour_sets(small_nearest_neighbour(3));  // D = 4, 4 classes
  auto model = small_set_model("lff");
  model.content_dim = 4;
  model.classes = 4;
  EXPECT_EQ(fit_to_model(data, model, "sets.jsonl").positions.sizes(),
            (std::vector<int64_t>{3, 7, 1, 2}));
  model.classes = 3;
  expect_error_containing([&] { fit_to_model(data, model, "sets.jsonl"); },
                          {"sets.jsonl: targets up to 3", "classes 0 to 2"});
  model.content_dim = 5;
  expect_error_containing([&] { fit_to_model(data, model, "sets.jsonl"); },
                          {"sets.jsonl: content has 4 numbers per token, the model reads 5"});
  model.content_dim = 4;
  model.classes = 4;
  model.position_values = 1;
  expect_error_containing([&] { fit_to_model(data, model, "sets.jsonl"); },
                          {"cannot be read as G = 1, M = 1"});
}

TEST(LearnedQuantized, LooksUpOneBinPerCoordinateAndClampsOutsideTheRange) {
  auto encoding = make_encoding("learned_quantized:bins=4,G=1,M=2", {8, {1, 1, 0}});
  const auto tables = testing::parameter(encoding, "tables");  // (2, 4, 4)
  const auto positions = torch::tensor({0.26f, 0.99f, -3.0f, 7.0f}).view({1, 2, 1, 2});
  auto* additive = encoding->as<AdditiveEncodingImpl>();
  const auto embedding = additive->embedding(TokenLayout::at_positions(positions), {});
  const auto expected = torch::stack(
      {torch::cat({tables[0][1], tables[1][3]}), torch::cat({tables[0][0], tables[1][3]})});
  EXPECT_TRUE(torch::equal(embedding.squeeze(0), expected));
}

TEST(SinCos2d, GivesEachCoordinateOfAnyPositionShapeItsOwnScaledShare) {
  auto encoding = make_encoding("sincos2d:scale=3", {16, {1, 1, 0}});
  const auto positions = torch::rand({2, 3, 2, 2});
  auto* additive = encoding->as<AdditiveEncodingImpl>();
  const auto embedding = additive->embedding(TokenLayout::at_positions(positions), {});
  ASSERT_EQ(embedding.sizes(), (std::vector<int64_t>{2, 3, 16}));
  // coordinate 2 (x2) owns channels 8..11: [sin | cos] of 3 x2 at frequencies 1, 1e-2
  const auto x2 = positions.select(2, 1).select(2, 0) * 3;
  const auto frequency = std::pow(10000.0, -0.5);
  EXPECT_TRUE(torch::allclose(embedding.select(2, 8), torch::sin(x2), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(embedding.select(2, 9), torch::sin(x2 * frequency), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(embedding.select(2, 10), torch::cos(x2), 1e-5, 1e-5));
  expect_error_containing(
      [] {
        make_encoding("sincos2d:scale=0", {16, {1, 1, 0}});
      },
      {"scale must be a positive"});
}

TEST(EmbeddingDistanceCorrelation, IsStronglyNegativeForASmoothKernelAndZeroWithoutEncoding) {
  torch::manual_seed(0);
  const auto positions = torch::rand({64, 1, 2});
  SetTransformer smooth(small_set_model("lff:gamma=0.5"));
  EXPECT_LT(embedding_distance_correlation(smooth, positions), -0.5);
  SetTransformer none(small_set_model("none"));
  EXPECT_EQ(embedding_distance_correlation(none, positions), 0.0);
}

SetRunConfig tiny_set_run(int64_t epochs) {
  SetRunConfig config;
  config.data.train_sets = 64;
  config.data.test_sets = 16;
  config.data.points = 6;
  config.data.labels = 3;
  config.model = small_set_model("lff");
  config.training.epochs = epochs;
  config.training.batch_size = 16;
  config.training.warmup_epochs = 0.5;
  return config;
}

TEST(SetTraining, ARunStoppedMidEpochAndResumedEndsWithTheWeightsOfAnUninterruptedOne) {
  testing::TemporaryFolder folder;
  const auto whole = train_token_sets(tiny_set_run(2), folder.path("whole"));
  EXPECT_EQ(whole.status, TrainingOutcome::Status::Completed);
  ASSERT_TRUE(whole.last_test_accuracy.has_value());
  auto stopped_early = tiny_set_run(2);
  stopped_early.training.time_budget_seconds = 1e-9;  // stops after the first step
  const auto stopped = train_token_sets(stopped_early, folder.path("split"));
  EXPECT_EQ(stopped.status, TrainingOutcome::Status::TimeBudgetReached);
  const auto resumed = resume_token_set_training(folder.path("split"), {});
  EXPECT_EQ(resumed.status, TrainingOutcome::Status::Completed);
  EXPECT_EQ(resumed.epochs_done, 2);
  auto a = load_trained_set_model(whole.checkpoint);
  auto b = load_trained_set_model(resumed.checkpoint);
  for (const auto& item : a.model->named_parameters())
    EXPECT_TRUE(item.value().equal(b.model->named_parameters()[item.key()])) << item.key();
  // the stored configuration is a token-set run with the encoding's G and M written out
  const auto config = read_checkpoint_config(whole.checkpoint);
  EXPECT_EQ(config.at("task"), "nearest-neighbour");
  EXPECT_EQ(a.config.model.content_dim, 3);
  EXPECT_NE(a.config.model.encodings.front().find("G=1"), std::string::npos);
  std::ifstream metrics(folder.path("whole") + "/metrics.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(metrics, line))
    ++lines;
  EXPECT_EQ(lines, 2);
  expect_error_containing([&] { train_token_sets(tiny_set_run(1), folder.path("whole")); },
                          {"already holds a checkpoint", "--resume"});
  expect_error_containing([&] { RunConfig::from_json(config); }, {"token-set run", "posenc eval"});
}

TEST(SetTraining, EvaluationCountsOnlyTokensWithATarget) {
  auto data = make_nearest_neighbour_sets(small_nearest_neighbour(4));
  data.targets.select(1, 0).fill_(-1);  // the first token of every set has no target
  torch::manual_seed(0);
  SetTransformerOptions options = small_set_model("lff");
  options.content_dim = 4;
  options.classes = 4;
  SetTransformer model(options);
  const auto result = evaluate_token_sets(model, data, 3);
  EXPECT_EQ(result.tokens, 4 * 6);
  const auto logits = model->forward(data.content, data.positions);
  const auto correct = logits.argmax(2).eq(data.targets).narrow(1, 1, 6).sum().item<int64_t>();
  EXPECT_EQ(result.correct, correct);
}

TEST(CoordinateRange, ParsesLowColonHighAndRejectsAnythingElse) {
  EXPECT_EQ(CoordinateRange::parse("-0.5:1.5"), (CoordinateRange{-0.5, 1.5}));
  EXPECT_EQ(CoordinateRange::parse("1:2").describe(), "1:2");
  for (const std::string text : {"2:1", "1", "1:", ":2", "a:b", "0:inf", "1:1"}) {
    expect_error_containing([&] { CoordinateRange::parse(text); },
                            {"low:high with low < high", "'" + text + "'"});
  }
}

#ifdef POSENC_CLI_PATH
// `posenc train --task`, `--resume` and `posenc eval` on a token-set run, and the flags the
// command line refuses for it.
TEST(SetTaskCommandLine, TrainsResumesEvaluatesAndRefusesFlagsOfImageRuns) {
  testing::TemporaryFolder folder;
  const std::string out = folder.path("run"), log = folder.path("log");
  auto run = [&](std::vector<std::string> arguments) {
    arguments.insert(arguments.begin(), POSENC_CLI_PATH);
    testing::ChildProcess process(arguments, log);
    const auto status = process.wait_for(120);
    EXPECT_TRUE(status.has_value()) << "still running: " << arguments[1];
    return std::make_pair(status.value_or(-1), testing::read_text_file(log));
  };
  const std::vector<std::string> small = {
      "--task",    "layout", "--train-sets", "64", "--test-sets",  "8",
      "--dim",     "8",      "--depth",      "1",  "--heads",      "2",
      "--threads", "1",      "--out",        out,  "--batch-size", "16"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> arguments = {"train"};
    arguments.insert(arguments.end(), small.begin(), small.end());
    arguments.insert(arguments.end(), extra.begin(), extra.end());
    return arguments;
  };
  // one epoch with the default warm-up, which adapts; the rest of the recipe is the library's
  const auto [trained, train_log] = run(with({"--epochs", "1"}));
  EXPECT_EQ(trained, 0) << train_log;
  EXPECT_NE(train_log.find("trained 1 epochs"), std::string::npos) << train_log;
  EXPECT_NE(train_log.find("warm-up: 0.1 epochs"), std::string::npos) << train_log;
  const auto stored = read_checkpoint_config(out + "/last.pt").at("training");
  const auto recipe = SetRunConfig::default_training();
  EXPECT_EQ(stored.at("augmentation"), recipe.augmentation.to_json())
      << "a set run records augmentation that never applies";
  EXPECT_EQ(stored.at("label_smoothing").get<double>(), recipe.label_smoothing);
  const auto [resumed, resume_log] =
      run({"train", "--out", out, "--resume", "--epochs", "2", "--threads", "1"});
  EXPECT_EQ(resumed, 0) << resume_log;
  EXPECT_NE(resume_log.find("resuming at epoch 2"), std::string::npos) << resume_log;
  const auto [evaluated, eval_log] =
      run({"eval", "--checkpoint", out + "/last.pt", "--coordinate-ranges", "0:1,1:2", "--json"});
  EXPECT_EQ(evaluated, 0) << eval_log;
  EXPECT_NE(eval_log.find("\"positions\": \"1:2\""), std::string::npos) << eval_log;
  EXPECT_NE(eval_log.find("similarity_distance_correlation"), std::string::npos) << eval_log;

  const std::vector<std::pair<std::vector<std::string>, std::string>> refused = {
      {with({"--model", "nano"}),
       "--model applies to image runs, not to the token-set task layout"},
      // a resumed token-set run is checked as one, though --task is not given
      {{"train", "--out", out, "--resume", "--nproc", "2"},
       "--nproc applies to image runs, not to the token-set task layout (token-set runs train "
       "in one process)"},
      {{"train", "--points", "3", "--out", folder.path("x")}, "--points applies to token-set"},
      {{"train", "--task", "nearest-neighbour", "--points", "100000", "--out", folder.path("x")},
       "is more than the 1024 points"},
      {{"train", "--task", "sorting", "--out", folder.path("x")}, "unknown --task 'sorting'"},
      {{"eval", "--checkpoint", out + "/last.pt", "--resolutions", "28"},
       "--resolutions applies to image models"},
      {{"eval", "--checkpoint", out + "/last.pt", "--coordinate-ranges", "2:1"},
       "low:high with low < high"},
      {{"predict", "--checkpoint", out + "/last.pt", folder.path("none.png")},
       "not an image classifier"}};
  for (const auto& [arguments, message] : refused) {
    const auto [status, text] = run(arguments);
    EXPECT_NE(status, 0) << arguments[1];
    EXPECT_NE(text.find(message), std::string::npos) << text;
  }
}
#endif  // POSENC_CLI_PATH

}  // namespace
}  // namespace posenc
