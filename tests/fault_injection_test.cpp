// Faults injected into whole `posenc train` runs: SIGKILL in the middle of a checkpoint write,
// then --resume. (Full disks, unwritable folders and non-finite losses: training_test.cpp.)
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "posenc/train/trained_model.h"
#include "support/child_process.h"
#include "support/temporary_folder.h"
#include "support/tiny_image_task.h"

namespace posenc {
namespace {

#ifdef POSENC_CLI_PATH

using testing::ChildProcess;
using testing::read_text_file;
using testing::TemporaryFolder;
namespace fs = std::filesystem;

std::vector<std::string> tiny_training(const TemporaryFolder& data, const std::string& out) {
  return {POSENC_CLI_PATH, "train", "--out", out, "--data", "idx", "--train-images",
          data.path("train-images"), "--train-labels", data.path("train-labels"),
          "--test-images", data.path("test-images"), "--test-labels", data.path("test-labels"),
          "--model", "nano", "--dim", "16", "--depth", "2", "--heads", "2", "--image-size", "8",
          "--drop-path", "0.2", "--epochs", "6", "--warmup-epochs", "0.5", "--batch-size", "16",
          "--hflip", "0", "--threads", "1"};
}

int exit_code(const std::optional<int>& status) {
  return status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
}

TEST(FaultInjection, SigkillDuringACheckpointWriteKeepsThePreviousOneAndResumeEndsBitwiseEqual) {
  TemporaryFolder folder;
  testing::tiny_image_data(folder);
  {
    ChildProcess straight(tiny_training(folder, folder.path("straight")),
                          folder.path("straight.log"));
    ASSERT_EQ(exit_code(straight.wait_for(120.0)), 0) << read_text_file(folder.path("straight.log"));
  }
  const std::string out = folder.path("killed");
  const std::string temporary = out + "/.last.pt.tmp";
  int kills_during_write = 0;
  for (int attempt = 0; attempt < 3 && kills_during_write == 0; ++attempt) {
    fs::remove_all(out);
    ChildProcess run(tiny_training(folder, out), folder.path("killed.log"));
    // a write in progress while an earlier checkpoint exists, which must survive
    const auto started = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - started < std::chrono::seconds(60)) {
      const bool previous = fs::exists(out + "/last.pt");
      if (previous && fs::exists(temporary)) {
        run.send(SIGKILL);
        ++kills_during_write;
        break;
      }
      if (run.wait_for(0.0))
        break;  // finished before a write was caught: try again
    }
    run.wait_for(10.0);
  }
  ASSERT_GT(kills_during_write, 0) << "never caught a checkpoint write in progress";
  EXPECT_NO_THROW(load_trained_model(out + "/last.pt")) << "the previous checkpoint must load";

  ChildProcess resumed({POSENC_CLI_PATH, "train", "--out", out, "--resume", "--threads", "1"},
                       folder.path("resumed.log"));
  ASSERT_EQ(exit_code(resumed.wait_for(120.0)), 0) << read_text_file(folder.path("resumed.log"));
  EXPECT_FALSE(fs::exists(temporary)) << "the next write replaces the torn temporary file";
  auto expected = load_trained_model(folder.path("straight/last.pt")).model->named_parameters();
  for (const auto& item : load_trained_model(out + "/last.pt").model->named_parameters())
    EXPECT_TRUE(torch::equal(item.value(), expected[item.key()])) << item.key();
}

#endif  // POSENC_CLI_PATH

}  // namespace
}  // namespace posenc
