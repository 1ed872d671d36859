// The training loop with a task of its own: a two-weight regression whose test pass can receive
// Ctrl-C at a chosen moment, so that stopping inside the test pass is checked deterministically.
#include <chrono>
#include <csignal>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "posenc/data/batch_loader.h"
#include "posenc/train/evaluation.h"
#include "support/temporary_folder.h"
#include "support/tiny_image_task.h"
#include "train/progress_bar.h"
#include "train/training_loop.h"
#include "train/training_session.h"

namespace posenc {
namespace {

using testing::TemporaryFolder;

// y = 2 x on 12 points, 3 steps of 4 per epoch; its test pass has 5 batches. With
// `ctrl_c_in_test_pass`, the first test pass raises SIGINT before its third batch.
class RegressionTask : public TrainingTask {
 public:
  explicit RegressionTask(bool ctrl_c_in_test_pass) : ctrl_c_in_test_pass_(ctrl_c_in_test_pass) {
    training_.epochs = 2;
    training_.batch_size = 4;
    training_.warmup_epochs = 0.0;
    training_.learning_rate = 0.01;
  }

  torch::nn::Module& model() override { return *model_; }
  std::pair<std::vector<torch::Tensor>, std::vector<torch::Tensor>> weight_decay_groups()
      override {
    return {model_->parameters(), {}};
  }
  TrainingOptions& training() override { return training_; }
  nlohmann::json config_json() const override { return {{"task", "regression"}}; }
  int64_t begin(const Communicator&) override { return 3; }
  void start_epoch(int64_t epoch, int64_t step) override {
    started.emplace_back(epoch, step);
    next_step_ = step;
  }
  StepLoss forward_next_batch() override {
    const auto x = torch::linspace(-1.0, 1.0, 12).narrow(0, 4 * next_step_++, 4).unsqueeze(1);
    const auto loss = torch::mse_loss(model_->forward(x), 2.0 * x);
    ++steps_taken;
    return {loss, loss.item<double>() * 4.0, 0, 4};
  }
  TaskEvaluation evaluate(Communicator&, const StopRequest& stop_requested) override {
    ++test_passes;
    if (test_pass_sleep_ms > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(test_pass_sleep_ms));
    for (int batch = 0; batch < 5; ++batch) {
      if (ctrl_c_in_test_pass_ && test_passes == 1 && batch == 2)
        std::raise(SIGINT);
      if (stop_requested())
        return {0.0, 0.0, /*complete=*/false};
      ++test_batches;
    }
    return {0.5, 0.25, /*complete=*/true};
  }
  std::string samples_name() const override { return "points"; }
  std::string samples_unit() const override { return "pt"; }

  std::vector<std::pair<int64_t, int64_t>> started;  // (epoch, step) of each start_epoch
  int steps_taken = 0;
  int test_passes = 0;
  int test_batches = 0;
  int test_pass_sleep_ms = 0;

 private:
  bool ctrl_c_in_test_pass_;
  TrainingOptions training_;
  torch::nn::Linear model_{1, 1};
  int64_t next_step_ = 0;
};

int count_lines(const std::string& path) {
  std::ifstream file(path);
  int lines = 0;
  for (std::string line; std::getline(file, line);)
    ++lines;
  return lines;
}

TEST(TrainingLoop, CtrlCInTheTestPassStopsItThereAndResumeRunsThatTestPassAgain) {
  TemporaryFolder folder;
  Communicator single;
  RegressionTask interrupted(/*ctrl_c_in_test_pass=*/true);
  const auto stopped = run_training_loop(interrupted, {false, nullptr, folder.path()}, single);
  EXPECT_EQ(stopped.status, TrainingOutcome::Status::Interrupted);
  EXPECT_EQ(stopped.signal, SIGINT);
  EXPECT_EQ(interrupted.test_batches, 2) << "the test pass stops at the next batch";
  EXPECT_EQ(interrupted.steps_taken, 3);
  EXPECT_EQ(count_lines(folder.path("metrics.jsonl")), 0) << "no epoch without its test";
  const auto checkpoint = CheckpointBytes::read(checkpoint_path(folder.path()));
  const auto progress = read_training_progress(checkpoint);
  EXPECT_EQ(progress.epoch, 0);
  EXPECT_EQ(progress.batch_in_epoch, 3) << "the epoch's trained steps are kept";

  RegressionTask resumed(/*ctrl_c_in_test_pass=*/false);
  const auto finished = run_training_loop(resumed, {true, &checkpoint, folder.path()}, single);
  EXPECT_EQ(finished.status, TrainingOutcome::Status::Completed);
  ASSERT_FALSE(resumed.started.empty());
  EXPECT_EQ(resumed.started.front(), std::make_pair(int64_t{0}, int64_t{3}));
  EXPECT_EQ(resumed.steps_taken, 3) << "epoch 1 is not trained again, epoch 2 is";
  EXPECT_EQ(resumed.test_passes, 2);
  EXPECT_EQ(count_lines(folder.path("metrics.jsonl")), 2);
}

TEST(TrainingLoop, TheImageTestPassStopsWhenAskedAndSaysItIsIncomplete) {
  TemporaryFolder folder;
  const auto test = testing::tiny_image_data(folder).load("test");  // 30 images
  VisionTransformer model(testing::tiny_model());
  const auto normalization = Normalization::measure(test);
  int batches_asked = 0;
  const auto stopped = evaluate(model, test, normalization, 8, 8, /*batch_size=*/10,
                                [&] { return ++batches_asked > 2; });
  EXPECT_FALSE(stopped.complete);
  EXPECT_EQ(stopped.images, 20);
  const auto whole = evaluate(model, test, normalization, 8, 8, 10);
  EXPECT_TRUE(whole.complete);
  EXPECT_EQ(whole.images, 30);
}

// The epoch's line and metrics count the test pass apart from the training steps, and the ETA
// covers the run, test passes included once one has been timed.
TEST(TrainingLoop, TimesTheTestPassApartAndTheEtaCoversTheRun) {
  TemporaryFolder folder;
  Communicator single;
  RegressionTask task(/*ctrl_c_in_test_pass=*/false);
  task.test_pass_sleep_ms = 300;
  ASSERT_EQ(run_training_loop(task, {false, nullptr, folder.path()}, single).status,
            TrainingOutcome::Status::Completed);
  std::ifstream metrics(folder.path("metrics.jsonl"));
  int epochs = 0;
  for (std::string line; std::getline(metrics, line); ++epochs) {
    const auto entry = nlohmann::json::parse(line);
    EXPECT_GE(entry.at("test_seconds").get<double>(), 0.3) << line;
    EXPECT_LT(entry.at("epoch_seconds").get<double>(), 0.3) << "the steps alone: " << line;
  }
  EXPECT_EQ(epochs, 2);

  // 0.5 s per step, step 10 of 20 in epoch 1 of 3: 5 s left in it, then 2 epochs of 10 s
  EXPECT_EQ(format_eta(0.5, 0, 3, 10, 20, -1.0), "ETA 5s, run 25s + test passes");
  EXPECT_EQ(format_eta(0.5, 0, 3, 10, 20, 4.0), "ETA 5s, run 37s");  // + 3 test passes of 4 s
  EXPECT_EQ(format_eta(0.5, 2, 3, 20, 20, 4.0), "ETA 0s, run 4s");   // the last test pass
}

}  // namespace
}  // namespace posenc
