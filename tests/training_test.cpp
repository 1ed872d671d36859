// Training: schedule, checkpoints (atomic, exact resume, clear mismatch reports), and the
// training loop end to end on a tiny generated data set.
#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <stb_image_write.h>
#include <torch/torch.h>

#include "posenc/encoding_registry.h"
#include "posenc/encoding_spec.h"
#include "posenc/interop/timm_model_config.h"
#include "posenc/interop/torch_save_files.h"
#include "posenc/train/checkpoint.h"
#include "posenc/train/evaluation.h"
#include "posenc/train/learning_rate_schedule.h"
#include "posenc/train/set_training.h"
#include "posenc/train/trained_model.h"
#include "posenc/train/trainer.h"
#include "support/child_process.h"
#include "support/temporary_folder.h"
#include "support/test_encodings.h"
#include "support/tiny_image_task.h"

namespace posenc {
namespace {

using testing::expect_error_containing;
using testing::TemporaryFolder;
using testing::tiny_image_data;
using testing::tiny_model;
namespace fs = std::filesystem;

TEST(CosineSchedule, WarmsUpLinearlyThenDecaysToTheFloor) {
  const CosineSchedule schedule(1.0, 0.1, 4, 14);
  EXPECT_NEAR(schedule.at(0), 0.2, 1e-12);
  EXPECT_NEAR(schedule.at(3), 0.8, 1e-12);
  EXPECT_NEAR(schedule.at(4), 1.0, 1e-12);
  EXPECT_NEAR(schedule.at(9), 0.55, 1e-12);
  EXPECT_NEAR(schedule.at(14), 0.1, 1e-12);
  for (int64_t step = 5; step < 14; ++step)
    EXPECT_LT(schedule.at(step), schedule.at(step - 1));
}

TEST(Checkpoint, RoundTripsTensorsAndProgress) {
  TemporaryFolder folder;
  VisionTransformer model(tiny_model());
  TrainingProgress progress;
  progress.epoch = 3;
  progress.batch_in_epoch = 5;
  progress.global_step = 77;
  progress.epoch_loss_sum = 1.5;
  progress.world_size = 2;
  progress.rng_states = {torch::ones({4}, torch::kUInt8), torch::full({4}, 7, torch::kUInt8)};
  torch::optim::AdamW saved_optimizer(model->parameters());
  save_checkpoint(folder.path("c.pt"), {{"hello", 1}}, *model, &saved_optimizer, progress);
  EXPECT_EQ(read_checkpoint_config(folder.path("c.pt")), (nlohmann::json{{"hello", 1}}));
  VisionTransformer other(tiny_model());
  load_model_tensors(folder.path("c.pt"), *other);
  torch::optim::AdamW optimizer(other->parameters());
  auto loaded = load_training_state(folder.path("c.pt"), optimizer);
  EXPECT_EQ(loaded.epoch, 3);
  EXPECT_EQ(loaded.batch_in_epoch, 5);
  EXPECT_EQ(loaded.global_step, 77);
  EXPECT_EQ(loaded.epoch_loss_sum, 1.5);
  EXPECT_EQ(loaded.world_size, 2);
  ASSERT_EQ(loaded.rng_states.size(), 2u);
  EXPECT_TRUE(torch::equal(loaded.rng_states[1], progress.rng_states[1]));
  auto expected = model->named_parameters();
  for (const auto& item : other->named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), expected[item.key()])) << item.key();
  }
}

TEST(Checkpoint, ListsEveryMismatchedTensorOfAnotherConfiguration) {
  TemporaryFolder folder;
  VisionTransformer model(tiny_model());
  save_checkpoint(folder.path("c.pt"), {}, *model, nullptr, {});
  auto wider = tiny_model();
  wider.dim = 32;
  wider.encodings = {"learned1d"};
  VisionTransformer other(wider);
  expect_error_containing([&] { load_model_tensors(folder.path("c.pt"), *other); },
                          {"does not fit", "shape differs: cls_token is [1, 1, 16]", "[1, 1, 32]",
                           "missing in checkpoint: additive_encodings.0.pos_embed",
                           "not in the model: conditional_encodings.0.weight"});
}

TEST(Checkpoint, RejectsMissingTruncatedAndForeignFiles) {
  TemporaryFolder folder;
  expect_error_containing([&] { read_checkpoint_config(folder.path("none.pt")); },
                          {"does not exist"});
  VisionTransformer model(tiny_model());
  save_checkpoint(folder.path("c.pt"), {}, *model, nullptr, {});
  const auto size = fs::file_size(folder.path("c.pt"));
  fs::copy_file(folder.path("c.pt"), folder.path("cut.pt"));
  fs::resize_file(folder.path("cut.pt"), size / 2);
  expect_error_containing([&] { read_checkpoint_config(folder.path("cut.pt")); },
                          {"cut.pt", "not a readable"});
  testing::write_bytes(folder.path("text.pt"), "just some text");
  expect_error_containing([&] { read_checkpoint_config(folder.path("text.pt")); }, {"text.pt"});
  torch::serialize::OutputArchive foreign;
  foreign.write("weight", torch::ones({2}));
  foreign.save_to(folder.path("foreign.pt"));
  expect_error_containing([&] { read_checkpoint_config(folder.path("foreign.pt")); },
                          {"not a posenc checkpoint"});
}

TEST(Checkpoint, AFailedWriteKeepsThePreviousFileAndLeavesNoTemporary) {
  TemporaryFolder folder;
  VisionTransformer model(tiny_model());
  // the target is a non-empty folder, so the final rename fails after the data was written
  fs::create_directories(folder.path("c.pt/inside"));
  expect_error_containing([&] { save_checkpoint(folder.path("c.pt"), {}, *model, nullptr, {}); },
                          {"could not write checkpoint", "previous checkpoint"});
  EXPECT_TRUE(fs::is_directory(folder.path("c.pt/inside")));
  for (const auto& entry : fs::directory_iterator(folder.path())) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
  }
}

// A write that fails half-way (RLIMIT_FSIZE stands in for a full disk) leaves the previous
// checkpoint byte for byte as it was.
TEST(Checkpoint, AFullDiskKeepsThePreviousCheckpoint) {
  TemporaryFolder folder;
  VisionTransformer model(tiny_model());
  save_checkpoint(folder.path("c.pt"), {{"version", 1}}, *model, nullptr, {});
  std::ifstream before_file(folder.path("c.pt"), std::ios::binary);
  const std::string before((std::istreambuf_iterator<char>(before_file)), {});
  rlimit original{};
  getrlimit(RLIMIT_FSIZE, &original);
  auto previous_handler = std::signal(SIGXFSZ, SIG_IGN);  // fail the write instead of dying
  rlimit tiny = original;
  tiny.rlim_cur = 4096;
  setrlimit(RLIMIT_FSIZE, &tiny);
  std::string message;
  try {
    save_checkpoint(folder.path("c.pt"), {{"version", 2}}, *model, nullptr, {});
  } catch (const c10::Error& error) {
    message = error.what_without_backtrace();
  }
  setrlimit(RLIMIT_FSIZE, &original);
  std::signal(SIGXFSZ, previous_handler);
  EXPECT_NE(message.find("could not write checkpoint"), std::string::npos) << message;
  std::ifstream after_file(folder.path("c.pt"), std::ios::binary);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(after_file)), {}), before);
  EXPECT_EQ(read_checkpoint_config(folder.path("c.pt"))["version"], 1);
  for (const auto& entry : fs::directory_iterator(folder.path())) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
  }
}

RunConfig tiny_run(const TemporaryFolder& folder) {
  RunConfig config;
  config.model = tiny_model();
  config.model.depth = 2;
  config.model.drop_path = 0.5;  // block 1 drops paths: the RNG state a resume must restore
  config.model.head = "gap";
  config.data = tiny_image_data(folder);
  config.training.epochs = 3;
  config.training.batch_size = 16;
  config.training.warmup_epochs = 0.5;
  config.training.learning_rate = 3e-3;
  config.training.augmentation.horizontal_flip = 0.0;
  config.training.train_resolutions = {8, 12};
  return config;
}

// A checkpoint stores every option of every encoding, not the spec as typed: a default that
// changes later cannot turn a reloaded model into another one.
TEST(Trainer, CheckpointsStoreEveryOptionOfEveryEncoding) {
  TemporaryFolder folder;
  auto config = tiny_run(folder);
  config.training.epochs = 1;
  config.model.encodings = {"lff:F=16,H=8", "peg"};
  config.model.conditional_after_blocks = {0};
  train(config, folder.path("run"));
  const auto stored =
      read_checkpoint_config(folder.path("run/last.pt")).at("model").at("encodings");
  ASSERT_EQ(stored.size(), 2u);
  for (const auto& spec : stored) {
    const auto parsed = parse_encoding_spec(spec.get<std::string>());
    for (const auto& option : find_encoding(parsed.at("type")).options)
      EXPECT_TRUE(parsed.contains(option.key)) << spec << " lacks " << option.key;
  }
  EXPECT_EQ(parse_encoding_spec(stored[0].get<std::string>()).at("F"), 16);
  const auto reloaded = load_trained_model(folder.path("run/last.pt"));
  EXPECT_EQ(nlohmann::json(reloaded.model->options().encodings), stored);
}

TEST(Trainer, LearnsATinyTaskAndWritesCheckpointMetricsAndPlot) {
  TemporaryFolder folder;
  auto outcome = train(tiny_run(folder), folder.path("run"));
  EXPECT_EQ(outcome.status, TrainingOutcome::Status::Completed);
  EXPECT_TRUE(fs::exists(folder.path("run/last.pt")));
  std::ifstream metrics(folder.path("run/metrics.jsonl"));
  int lines = 0;
  for (std::string line; std::getline(metrics, line); ++lines) {
    EXPECT_EQ(nlohmann::json::parse(line).at("epoch"), lines + 1);
  }
  EXPECT_EQ(lines, 3);
  auto trained = load_trained_model(folder.path("run/last.pt"));
  EXPECT_EQ(trained.config.model.classes, 3);
  const auto test = trained.config.data.load("test");
  const auto result = evaluate(trained.model, test, trained.config.normalization, 8, 8, 100);
  ASSERT_TRUE(outcome.last_test_accuracy.has_value());
  EXPECT_DOUBLE_EQ(result.accuracy, *outcome.last_test_accuracy);
  EXPECT_GT(result.accuracy, 0.5) << "3 classes: chance is 0.33";
  expect_error_containing([&] { train(tiny_run(folder), folder.path("run")); },
                          {"already holds a checkpoint", "--resume"});
}

TEST(Trainer, ResumingAfterAStopMidEpochReachesTheSameWeightsAsAnUninterruptedRun) {
  TemporaryFolder folder;
  train(tiny_run(folder), folder.path("straight"));
  auto stopped = tiny_run(folder);
  stopped.training.time_budget_seconds = 1e-9;  // stops after the first step
  const auto first = train(stopped, folder.path("resumed"));
  ASSERT_EQ(first.status, TrainingOutcome::Status::TimeBudgetReached);
  const auto second = resume_training(folder.path("resumed"), {});
  ASSERT_EQ(second.status, TrainingOutcome::Status::Completed);
  const auto again = resume_training(folder.path("resumed"), {});
  EXPECT_EQ(again.epochs_done, 3);
  EXPECT_FALSE(again.last_test_accuracy.has_value()) << "nothing left to train";
  auto a = load_trained_model(folder.path("straight/last.pt"));
  auto b = load_trained_model(folder.path("resumed/last.pt"));
  auto expected = a.model->named_parameters();
  for (const auto& item : b.model->named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), expected[item.key()])) << item.key();
  }
}

// Native-resolution training (images of their own random sizes in each batch) trains, shows its
// tokens/s and padding share, and a run stopped after its first step and resumed ends with the
// weights of an uninterrupted one.
TEST(Trainer, NativeSizeTrainingResumesToTheSameWeights) {
  TemporaryFolder folder;
  auto config = tiny_run(folder);  // 8x8 images, patch 4
  config.training.train_resolutions.clear();  // one size per image instead of per batch
  config.training.native_sizes = {4, 12};
  ::testing::internal::CaptureStderr();
  train(config, folder.path("straight"));
  const auto progress = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(progress.find(" tok/s, "), std::string::npos) << progress;
  EXPECT_NE(progress.find("% padding"), std::string::npos) << progress;
  auto stopped = config;
  stopped.training.time_budget_seconds = 1e-9;  // stops after the first step
  ASSERT_EQ(train(stopped, folder.path("resumed")).status,
            TrainingOutcome::Status::TimeBudgetReached);
  const auto finished = resume_training(folder.path("resumed"), {});
  ASSERT_EQ(finished.status, TrainingOutcome::Status::Completed);
  ASSERT_TRUE(finished.last_test_accuracy.has_value());
  auto a = load_trained_model(folder.path("straight/last.pt"));
  auto b = load_trained_model(folder.path("resumed/last.pt"));
  auto expected = a.model->named_parameters();
  for (const auto& item : b.model->named_parameters())
    EXPECT_TRUE(torch::equal(item.value(), expected[item.key()])) << item.key();
  EXPECT_EQ(b.config.training.native_sizes, (std::vector<int64_t>{4, 12}));
  auto both = config;
  both.training.train_resolutions = {8, 12};
  expect_error_containing([&] { both.training.validate(); },
                          {"native sizes", "training resolutions", "choose one"});
}

// Every options struct reads and writes its JSON through one typed declaration: a round trip is
// the identity, missing keys keep the defaults, and unknown keys (nested ones too) or values of
// the wrong type are errors that name them.
TEST(RunConfig, JsonRoundTripsAndRejectsUnknownKeysAndWrongTypes) {
  RunConfig config;
  config.model.encodings = {"lff:F=16"};
  config.training.epochs = 7;
  config.training.augmentation.crop_padding = 3;
  config.data.train_subset = 100;
  const auto json = config.to_json();
  EXPECT_EQ(RunConfig::from_json(json).to_json(), json);
  EXPECT_EQ(TrainingOptions::from_json(nlohmann::json::object()).to_json(),
            TrainingOptions{}.to_json());

  auto typo = json;
  typo["training"]["augmentation"]["crop_pading"] = 2;
  expect_error_containing([&] { RunConfig::from_json(typo); },
                          {"unknown augmentation option 'crop_pading'", "crop_padding"});
  auto wrong = json;
  wrong["model"]["depth"] = "six";
  expect_error_containing([&] { RunConfig::from_json(wrong); },
                          {"model option 'depth' takes an integer, got \"six\""});
  wrong = json;
  wrong["data"]["train_subset"] = "all";
  expect_error_containing([&] { RunConfig::from_json(wrong); },
                          {"data option 'train_subset' takes an integer"});
  // read as 2 and 2^64 - 1 before
  wrong = json;
  wrong["training"]["epochs"] = 2.7;
  expect_error_containing([&] { RunConfig::from_json(wrong); },
                          {"training option 'epochs' takes an integer, got 2.7"});
  wrong = json;
  wrong["training"]["seed"] = -1;
  expect_error_containing([&] { RunConfig::from_json(wrong); },
                          {"training option 'seed' takes a non-negative integer, got -1"});
}

TEST(TrainingOptions, RejectsAWarmUpThatIsNotShorterThanTheRun) {
  TrainingOptions options;
  options.epochs = 2;
  options.warmup_epochs = 3.0;
  expect_error_containing([&] { options.validate(); },
                          {"warm-up (3 epochs) must be shorter than the run (2 epochs)"});
  options.warmup_epochs = -1.0;  // said "must be shorter than the run" before
  expect_error_containing([&] { options.validate(); }, {"must be 0 or more epochs, got -1"});
  options.warmup_epochs = 0.5;
  EXPECT_NO_THROW(options.validate());
}

TEST(Trainer, StopsOnANonFiniteLossAndSaysWhere) {
  TemporaryFolder folder;
  auto config = tiny_run(folder);
  config.training.learning_rate = 1e30;
  config.training.min_learning_rate = 0.0;
  config.training.warmup_epochs = 0.0;
  config.training.gradient_clip = 0.0;
  expect_error_containing([&] { train(config, folder.path("run")); },
                          {"the loss became", "at epoch 1", "Lower --lr"});
}

TEST(Trainer, RejectsAnUnwritableOutputFolderBeforeTraining) {
  TemporaryFolder folder;
  testing::write_bytes(folder.path("file"), "a file, not a folder");
  expect_error_containing([&] { train(tiny_run(folder), folder.path("file/run")); },
                          {"cannot create output folder"});
  expect_error_containing([&] { resume_training(folder.path("nothing"), {}); },
                          {"no checkpoint", "without --resume"});
}

#ifdef POSENC_CLI_PATH
// Runs posenc with `arguments` for at most a minute, its output in `folder`/log: the exit status
// (-1 if it did not exit) and the output.
std::pair<int, std::string> run_posenc(const TemporaryFolder& folder,
                                       std::vector<std::string> arguments) {
  arguments.insert(arguments.begin(), POSENC_CLI_PATH);
  testing::ChildProcess process(arguments, folder.path("log"));
  const auto status = process.wait_for(60.0);
  EXPECT_TRUE(status.has_value()) << arguments[1] << " still runs";
  return {status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1,
          testing::read_text_file(folder.path("log"))};
}

// tiny_run for `epochs` epochs, trained into `folder`/run through the library.
RunConfig train_tiny_run(const TemporaryFolder& folder, int64_t epochs) {
  auto config = tiny_run(folder);
  config.training.epochs = epochs;
  train(config, folder.path("run"));
  return config;
}

// The shortest run a new user tries: `posenc train --epochs 1` with the default warm-up (1 epoch),
// which would not be shorter than the run; it adapts, and says so.
TEST(TrainCommand, OneEpochWithTheDefaultWarmUpTrains) {
  TemporaryFolder folder;
  testing::tiny_image_data(folder);
  const std::string out = folder.path("run"), log = folder.path("log");
  testing::ChildProcess process(
      {POSENC_CLI_PATH, "train", "--out", out, "--data", "idx", "--train-images",
       folder.path("train-images"), "--train-labels", folder.path("train-labels"),
       "--test-images", folder.path("test-images"), "--test-labels", folder.path("test-labels"),
       "--model", "nano", "--dim", "16", "--depth", "1", "--heads", "2", "--image-size", "8",
       "--epochs", "1", "--batch-size", "8", "--threads", "1"},
      log);
  const auto status = process.wait_for(120.0);
  const std::string text = testing::read_text_file(log);
  ASSERT_TRUE(status.has_value()) << text;
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << text;
  EXPECT_NE(text.find("warm-up: 0.1 epochs, a tenth of the run"), std::string::npos) << text;
  EXPECT_DOUBLE_EQ(
      read_checkpoint_config(out + "/last.pt").at("training").at("warmup_epochs").get<double>(),
      0.1);
}
// Every flag of `posenc train` comes from one table: its --help gives the library's defaults,
// its values are checked by their settings' types before any work starts, and a --resume refuses
// a flag that would change the stored run instead of ignoring it.
TEST(TrainCommand, FlagsAreCheckedByTheirSettingsAndResumeRefusesToChangeTheRun) {
  TemporaryFolder folder;
  const auto config = train_tiny_run(folder, 2);
  const auto [help_code, help] = run_posenc(folder, {"train", "--help"});
  EXPECT_EQ(help_code, 0);
  EXPECT_NE(help.find(c10::str("(default ", TrainingOptions{}.epochs, "; token-set tasks: ",
                               SetRunConfig::default_training().epochs, ")")),
            std::string::npos)
      << help;
  EXPECT_NE(help.find(c10::str("(default ", DataSource{}.channels, ")")), std::string::npos)
      << help;

  const std::string out = folder.path("run"), fresh = folder.path("fresh");
  const std::vector<std::pair<std::vector<std::string>, std::string>> refused = {
      {{"train", "--out", out, "--resume", "--lr", "0.1"},
       "--lr would change a resumed run: --resume continues the run in"},
      {{"train", "--out", out, "--resume", "--model", "nano"}, "--model would change"},
      {{"train", "--out", out, "--resume", "--epochs", "1"},
       "--epochs 1 is fewer than the 2 epochs this run has already trained"},
      {{"train", "--out", fresh, "--threads", "100000"}, "--threads takes 1 to "},
      {{"train", "--out", fresh, "--threads", "0"}, "--threads takes 1 to "},
      {{"train", "--out", fresh, "--seed", "-1"}, "--seed takes a non-negative integer"},
      {{"train", "--out", fresh, "--epochs", "2.7"}, "--epochs takes an integer, got '2.7'"},
      {{"train", "--out", fresh, "--warmup-epochs", "-1"}, "must be 0 or more epochs"},
      {{"trian", "--out", fresh}, "'trian' is not a posenc command; did you mean 'train'?"},
      {{"train", "--epoch", "3", "--out", fresh}, "did you mean --epochs?"},
      {{"train", "--out", fresh, "--pe", "learned1d", "--pe-after", "0-1"},
       "--pe-after places conditional encodings such as peg, but the model's encodings"},
      {{"train", "--out", fresh, "--channels", "3"},
       "--channels sets how image folders are read; fashion-mnist images keep"}};
  for (const auto& [arguments, message] : refused) {
    const auto [code, text] = run_posenc(folder, arguments);
    EXPECT_EQ(code, 1) << text;
    EXPECT_EQ(text.rfind("posenc: error: ", 0), 0u) << text;
    EXPECT_NE(text.find(message), std::string::npos) << text;
  }
  EXPECT_FALSE(std::filesystem::exists(fresh)) << "a refused run made its folder";
  EXPECT_EQ(
      read_checkpoint_config(out + "/last.pt").at("training").at("learning_rate").get<double>(),
      config.training.learning_rate);
}
// What `posenc export` and `posenc import` write never replaces their own input, nor any file
// without --force; a missing folder for --out is made.
TEST(ExportAndImportCommands, NeverReplaceTheirInputOrAFileUnlessForced) {
  TemporaryFolder folder;
  const auto config = train_tiny_run(folder, 1);
  const std::string checkpoint = folder.path("run/last.pt");
  const auto before = testing::read_text_file(checkpoint);
  // the run's own checkpoint, by its path and by another path to it
  for (const auto& out : {checkpoint, folder.path("run/../run/last.pt")}) {
    const auto [code, text] =
        run_posenc(folder, {"export", "--checkpoint", checkpoint, "--out", out, "--force"});
    EXPECT_NE(code, 0) << text;
    EXPECT_NE(text.find("is the input"), std::string::npos) << text;
  }
  EXPECT_EQ(testing::read_text_file(checkpoint), before) << "export replaced the checkpoint";

  const std::string exported = folder.path("new/folder/model.pth");
  EXPECT_EQ(run_posenc(folder, {"export", "--checkpoint", checkpoint, "--out", exported}).first, 0);
  const std::vector<std::string> export_again = {"export", "--checkpoint", checkpoint, "--out",
                                                 exported};
  const auto [again, again_text] = run_posenc(folder, export_again);
  EXPECT_NE(again, 0);
  EXPECT_NE(again_text.find("already exists"), std::string::npos) << again_text;
  EXPECT_NE(again_text.find("--force"), std::string::npos) << again_text;
  auto forced = export_again;
  forced.push_back("--force");
  EXPECT_EQ(run_posenc(folder, forced).first, 0);

  const auto [imported, import_text] =
      run_posenc(folder, {"import", "--from", "timm-vit", exported, "--out", checkpoint, "--heads",
                          "2"});
  EXPECT_NE(imported, 0) << import_text;
  EXPECT_EQ(testing::read_text_file(checkpoint), before) << "import replaced the checkpoint";
  const auto [self, self_text] =
      run_posenc(folder, {"import", "--from", "timm-vit", exported, "--out", exported, "--force"});
  EXPECT_NE(self, 0);
  EXPECT_NE(self_text.find("is the input"), std::string::npos) << self_text;
}
// `predict --native-size` runs images of different sizes in one native-resolution batch, each at
// its own size: the same top classes as each image resized to its own size alone.
TEST(ImageCommands, PredictRunsImagesAtTheirOwnSizesInOneBatch) {
  TemporaryFolder folder;
  train_tiny_run(folder, 1);  // 8x8 grey images, patch 4
  const std::string checkpoint = folder.path("run/last.pt");
  std::vector<std::string> paths;
  const std::vector<std::pair<int, int>> sizes{{8, 8}, {12, 8}, {8, 16}};  // width, height
  for (size_t i = 0; i < sizes.size(); ++i) {
    const auto [width, height] = sizes[i];
    std::vector<uint8_t> pixels(static_cast<size_t>(width * height));
    for (size_t p = 0; p < pixels.size(); ++p)
      pixels[p] = static_cast<uint8_t>((p * 37 + i * 91) % 256);
    paths.push_back(folder.path("image" + std::to_string(i) + ".png"));
    ASSERT_NE(stbi_write_png(paths.back().c_str(), width, height, 1, pixels.data(), width), 0);
  }
  std::vector<std::string> native = {"predict", "--checkpoint", checkpoint, "--native-size",
                                     "--top-k", "2"};
  native.insert(native.end(), paths.begin(), paths.end());
  const auto [code, text] = run_posenc(folder, native);
  ASSERT_EQ(code, 0) << text;
  std::string alone_text;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const auto size = std::to_string(sizes[i].second) + "x" + std::to_string(sizes[i].first);
    const auto [alone, one] = run_posenc(folder, {"predict", "--checkpoint", checkpoint,
                                                  "--resolution", size, "--top-k", "2",
                                                  paths[i]});
    ASSERT_EQ(alone, 0) << one;
    alone_text += one;
  }
  EXPECT_EQ(text, alone_text);
  const auto [refused, refused_text] =
      run_posenc(folder, {"predict", "--checkpoint", checkpoint, "--native-size",
                          "--resolution", "8", paths[0]});
  EXPECT_EQ(refused, 1);
  EXPECT_NE(refused_text.find("leave out --resolution"), std::string::npos) << refused_text;
}

// The commands that feed images to a trained model check every size before any work (not after
// the sizes before it), take --pad-to-patch as train does, print each finished row at once, and
// write no file over an input or an existing file unless --force is given.
TEST(ImageCommands, CheckEverySizeFirstAndReplaceNoFileUnasked) {
  TemporaryFolder folder;
  train_tiny_run(folder, 1);  // 8x8 images, patch 4
  const std::string checkpoint = folder.path("run/last.pt");
  const auto before = testing::read_text_file(checkpoint);
  const std::vector<std::pair<std::vector<std::string>, std::string>> refused = {
      {{"eval", "--checkpoint", checkpoint, "--resolutions", "8,10"},
       "image size 10x10 is not divisible by the patch size 4"},
      {{"eval", "--checkpoint", checkpoint, "--batch-size", "0"}, "--batch-size must be >= 1"},
      {{"eval", "--checkpoint", checkpoint, "--resolutions", "8,100000"},
       "image size 100000x100000 makes 625000000 tokens"},
      {{"predict", "--checkpoint", checkpoint, "--resolution", "8x10", folder.path("x.png")},
       "image size 8x10 is not divisible"},
      {{"attention", "--checkpoint", checkpoint, "--resolution", "9", "--out",
        folder.path("a.png")},
       "--pad-to-patch"},
      {{"attention", "--checkpoint", checkpoint, "--out", checkpoint}, "is the input"},
      {{"forward", "--checkpoint", checkpoint, "--input", checkpoint, "--out", checkpoint},
       "is the input"}};
  for (const auto& [arguments, message] : refused) {
    const auto [code, text] = run_posenc(folder, arguments);
    EXPECT_EQ(code, 1) << text;
    EXPECT_EQ(text.rfind("posenc: error: ", 0), 0u) << "nothing before the error:\n" << text;
    EXPECT_NE(text.find(message), std::string::npos) << text;
  }
  EXPECT_EQ(testing::read_text_file(checkpoint), before);

  const auto [padded, padded_text] = run_posenc(
      folder, {"eval", "--checkpoint", checkpoint, "--resolutions", "8,10", "--pad-to-patch"});
  EXPECT_EQ(padded, 0) << padded_text;
  EXPECT_NE(padded_text.find("10x10"), std::string::npos) << padded_text;

  const std::string images = folder.path("images.pth"), logits = folder.path("logits.pth");
  write_torch_tensor(images, torch::randn({2, 1, 8, 12}));
  const std::vector<std::string> forward = {"forward", "--checkpoint", checkpoint,
                                            "--input",  images,  "--out", logits};
  EXPECT_EQ(run_posenc(folder, forward).first, 0);
  const auto [again, again_text] = run_posenc(folder, forward);
  EXPECT_EQ(again, 1) << again_text;
  EXPECT_NE(again_text.find("--force"), std::string::npos) << again_text;
  auto forced = forward;
  forced.push_back("--force");
  EXPECT_EQ(run_posenc(folder, forced).first, 0);
  EXPECT_EQ(read_torch_tensor(logits).sizes(), (std::vector<int64_t>{2, 3}));
}
// `posenc show` prints a checkpoint's progress and every stored setting, without the model.
TEST(ShowCommand, PrintsProgressAndEveryStoredSetting) {
  TemporaryFolder folder;
  const auto config = train_tiny_run(folder, 1);
  const std::string checkpoint = folder.path("run/last.pt");
  const auto [code, text] = run_posenc(folder, {"show", checkpoint});
  EXPECT_EQ(code, 0) << text;
  EXPECT_NE(text.find("image classifier, 1 of 1 epochs trained"), std::string::npos) << text;
  const auto stored = read_checkpoint_config(checkpoint);
  EXPECT_NE(text.find(stored.dump(2)), std::string::npos) << "every setting, as stored\n" << text;
  const auto [json_code, json_text] = run_posenc(folder, {"show", checkpoint, "--json"});
  ASSERT_EQ(json_code, 0) << json_text;
  const auto shown = nlohmann::json::parse(json_text);
  EXPECT_EQ(shown.at("config"), stored);
  EXPECT_EQ(shown.at("progress").at("epochs_done"), 1);
  EXPECT_EQ(shown.at("progress").at("optimiser_steps"), 96 / config.training.batch_size);
  const auto [missing, missing_text] = run_posenc(folder, {"show", folder.path("none.pt")});
  EXPECT_EQ(missing, 1) << missing_text;
}
// An imported model records no data; eval, attention and probe take the test images as flags
// (and a trained run's relative data paths are stored absolute, so they work from any folder).
TEST(EvaluationCommands, TakeTestDataAsFlagsForAnImportedModel) {
  TemporaryFolder folder;
  const auto config = train_tiny_run(folder, 1);
  const std::string exported = folder.path("model.pth"), imported = folder.path("imported.pt");
  ASSERT_EQ(
      run_posenc(folder, {"export", "--checkpoint", folder.path("run/last.pt"), "--out", exported})
          .first,
      0);
  ASSERT_EQ(run_posenc(folder, {"import", "--from", "cpvt", exported, "--out", imported, "--heads",
                                "2", "--image-size", "8"})
                .first,
            0);
  const auto [no_data, no_data_text] = run_posenc(folder, {"eval", "--checkpoint", imported});
  EXPECT_EQ(no_data, 1) << no_data_text;
  EXPECT_NE(no_data_text.find("stores no data (it was imported)"), std::string::npos)
      << no_data_text;
  const std::vector<std::string> test_data = {"--data", "idx", "--test-images",
                                              folder.path("test-images"), "--test-labels",
                                              folder.path("test-labels")};
  auto with_data = [&](std::vector<std::string> arguments) {
    arguments.insert(arguments.end(), test_data.begin(), test_data.end());
    return arguments;
  };
  const auto [evaluated, eval_text] =
      run_posenc(folder, with_data({"eval", "--checkpoint", imported, "--resolutions", "8,12"}));
  EXPECT_EQ(evaluated, 0) << eval_text;
  EXPECT_NE(eval_text.find("30 test images"), std::string::npos) << eval_text;
  const auto [probed, probe_text] = run_posenc(folder, with_data(
      {"probe", "--checkpoint", imported, "--out", folder.path("probe.png"), "--images", "256"}));
  EXPECT_EQ(probed, 0) << probe_text;
  EXPECT_NE(probe_text.find("averaged over 30 test images"), std::string::npos) << probe_text;
  const auto [attended, attention_text] = run_posenc(folder, with_data(
      {"attention", "--checkpoint", imported, "--out", folder.path("attention.png")}));
  EXPECT_EQ(attended, 0) << attention_text;
}

// export writes the run's settings beside the state dict (timm's config.json layout) and import
// reads them back: heads (dim 16 is no multiple of 64), input size, normalisation, class names.
TEST(ImportCommand, AnExportedRunComesBackWithItsSettings) {
  TemporaryFolder folder;
  train_tiny_run(folder, 1);
  const std::string checkpoint = folder.path("run/last.pt"), exported = folder.path("model.pth");
  const auto [code, text] = run_posenc(folder, {"export", "--checkpoint", checkpoint, "--out",
                                                exported});
  ASSERT_EQ(code, 0) << text;
  const std::string config_path = folder.path("model.config.json");
  ASSERT_TRUE(fs::exists(config_path)) << text;
  const auto original = load_trained_model(checkpoint);
  const auto written = read_timm_model_config(config_path);
  EXPECT_EQ(written.class_names, original.config.class_names);

  const std::string imported = folder.path("imported.pt");
  const auto [import_code, import_text] =
      run_posenc(folder, {"import", "--from", "cpvt", exported, "--out", imported});
  ASSERT_EQ(import_code, 0) << import_text;
  EXPECT_NE(import_text.find("settings from " + config_path), std::string::npos) << import_text;
  const auto back = load_trained_model(imported);
  EXPECT_EQ(back.config.model.heads, original.config.model.heads);
  EXPECT_EQ(back.config.model.image_height, original.config.model.image_height);
  EXPECT_EQ(back.config.model.image_width, original.config.model.image_width);
  EXPECT_EQ(back.config.model.conditional_after_blocks,
            original.config.model.conditional_after_blocks);
  EXPECT_EQ(back.config.normalization.mean, original.config.normalization.mean);
  EXPECT_EQ(back.config.normalization.std, original.config.normalization.std);
  EXPECT_EQ(back.config.class_names, original.config.class_names);

  // class names from a file win over the config's; without the config the heads are unknown
  std::vector<std::string> names;
  std::ofstream names_file(folder.path("names.txt"));
  for (size_t c = 0; c < original.config.class_names.size(); ++c) {
    names.push_back("class " + std::to_string(c));
    names_file << names.back() << "\n";
  }
  names_file.close();
  const auto [named, named_text] =
      run_posenc(folder, {"import", "--from", "cpvt", exported, "--out", imported, "--force",
                          "--class-names", folder.path("names.txt")});
  ASSERT_EQ(named, 0) << named_text;
  EXPECT_EQ(load_trained_model(imported).config.class_names, names);
  const auto [bare, bare_text] = run_posenc(
      folder, {"import", "--from", "cpvt", exported, "--out", imported, "--force", "--no-config"});
  EXPECT_EQ(bare, 1) << bare_text;
  EXPECT_NE(bare_text.find("pass --heads"), std::string::npos) << bare_text;
  // the config beside the state dict is an output too: never replaced unasked
  fs::remove(exported);
  const auto [again, again_text] =
      run_posenc(folder, {"export", "--checkpoint", checkpoint, "--out", exported});
  EXPECT_EQ(again, 1) << again_text;
  EXPECT_NE(again_text.find(config_path), std::string::npos) << again_text;
  EXPECT_FALSE(fs::exists(exported)) << "nothing written before the refusal";
}
#endif  // POSENC_CLI_PATH

}  // namespace
}  // namespace posenc
