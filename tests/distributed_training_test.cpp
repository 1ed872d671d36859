// Data-parallel training over Gloo: the collectives and gradient buckets in one process (ranks
// on threads), then whole runs of the posenc command line on loopback: 2 ranks match 1 process
// with twice the batch, a killed rank stops the other with a clear error, a 2-rank run resumes
// on 1.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <regex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "posenc/distributed/communicator.h"
#include "posenc/distributed/gradient_averager.h"
#include "posenc/distributed/replica_sync.h"
#include "posenc/train/trained_model.h"
#include "support/child_process.h"
#include "support/temporary_folder.h"
#include "support/test_encodings.h"
#include "support/tiny_image_task.h"

namespace posenc {
namespace {

using testing::ChildProcess;
using testing::expect_error_containing;
using testing::read_text_file;
using testing::TemporaryFolder;

RendezvousOptions loopback(int64_t world_size, int64_t rank, int64_t port,
                           double timeout_seconds = 30.0) {
  RendezvousOptions options;
  options.world_size = world_size;
  options.rank = rank;
  options.master_port = port;
  options.timeout_seconds = timeout_seconds;
  return options;
}

// Runs `body(communicator)` on `world_size` ranks, one thread each, joined on loopback.
// Rethrows the first rank's error on the test thread.
void on_ranks(int64_t world_size, const std::function<void(Communicator&)>& body) {
  const int64_t port = unused_local_port();
  std::vector<std::exception_ptr> errors(world_size);
  std::vector<std::thread> ranks;
  for (int64_t rank = 0; rank < world_size; ++rank) {
    ranks.emplace_back([&, rank] {
      try {
        Communicator communicator(loopback(world_size, rank, port));
        body(communicator);
        communicator.finish();
      } catch (...) {
        errors[rank] = std::current_exception();
      }
    });
  }
  for (auto& rank : ranks)
    rank.join();
  for (const auto& error : errors) {
    if (error)
      std::rethrow_exception(error);
  }
}

TEST(Communicator, AWorldOfOneRankMakesEveryCollectiveTheIdentity) {
  Communicator one;
  EXPECT_EQ(one.world_size(), 1);
  EXPECT_TRUE(one.is_leader());
  auto tensor = torch::arange(4, torch::kFloat32);
  one.all_reduce_sum(tensor, "test");
  EXPECT_TRUE(torch::equal(tensor, torch::arange(4, torch::kFloat32)));
  const auto gathered = one.all_gather(tensor, "test");
  ASSERT_EQ(gathered.size(), 1u);
  EXPECT_TRUE(torch::equal(gathered[0], tensor));
  std::string bytes = "unchanged";
  one.broadcast_bytes_from_leader(bytes, "test");
  EXPECT_EQ(bytes, "unchanged");
}

TEST(Communicator, SumsGathersAndBroadcastsBetweenTwoRanks) {
  on_ranks(2, [](Communicator& communicator) {
    const auto rank = static_cast<double>(communicator.rank());
    auto sum = torch::full({3}, rank + 1.0, torch::kFloat64);
    communicator.all_reduce_sum(sum, "test");
    EXPECT_TRUE(torch::equal(sum, torch::full({3}, 3.0, torch::kFloat64)));
    const auto gathered = communicator.all_gather(torch::full({2}, rank, torch::kLong), "test");
    ASSERT_EQ(gathered.size(), 2u);
    EXPECT_EQ(gathered[1][0].item<int64_t>(), 1);
    std::string bytes = communicator.is_leader() ? std::string("from rank 0\0!", 13) : "";
    communicator.broadcast_bytes_from_leader(bytes, "test");
    EXPECT_EQ(bytes, std::string("from rank 0\0!", 13));
    EXPECT_EQ(communicator.ranks_on_this_host(), 2);
  });
}

TEST(Rendezvous, NamesTheRanksThatNeverJoin) {
  expect_error_containing([] { Communicator alone(loopback(3, 0, unused_local_port(), 1.0)); },
                          {"ranks 1, 2 did not join", "within 1 s", "--timeout"});
}

// Whether something accepts TCP connections on 127.0.0.1:port within `seconds`.
bool listening_within(int64_t port, double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    const int socket = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<uint16_t>(port));
    const bool connected =
        ::connect(socket, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    ::close(socket);
    if (connected)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// Two processes claim rank 1 of a run of 2 (threads here): the second is refused by name.
// The claimants start once rank 0 listens, so that a slow start of rank 0 on a loaded machine
// is not mistaken for a refusal.
TEST(Rendezvous, RejectsASecondProcessClaimingTheSameRank) {
  const int64_t port = unused_local_port();
  std::string leader_error;
  std::thread leader([&] {
    try {
      Communicator communicator(loopback(2, 0, port, 20.0));
    } catch (const c10::Error& error) {
      // the genuine rank 1 may or may not have paired with it; only the duplicate matters here
      leader_error = error.what_without_backtrace();
    }
  });
  ASSERT_TRUE(listening_within(port, 20.0)) << "rank 0 never listened";
  std::vector<std::thread> claimants;
  std::vector<std::string> errors(2);
  for (int i = 0; i < 2; ++i) {
    claimants.emplace_back([&, i] {
      try {
        Communicator communicator(loopback(2, 1, port, 20.0));
      } catch (const c10::Error& error) {
        errors[i] = error.what_without_backtrace();
      }
    });
  }
  for (auto& claimant : claimants)
    claimant.join();
  leader.join();
  const bool named = errors[0].find("two processes claim rank 1") != std::string::npos ||
                     errors[1].find("two processes claim rank 1") != std::string::npos;
  EXPECT_TRUE(named) << errors[0] << " | " << errors[1] << " | rank 0: " << leader_error;
}

TEST(RendezvousOptions, ReadsTheTorchrunVariablesAndRejectsBadValues) {
  setenv("MASTER_ADDR", "10.1.2.3", 1);
  setenv("MASTER_PORT", "29555", 1);
  setenv("RANK", "3", 1);
  setenv("WORLD_SIZE", "4", 1);
  const auto options = RendezvousOptions::from_environment();
  EXPECT_EQ(options.master_addr, "10.1.2.3");
  EXPECT_EQ(options.master_port, 29555);
  EXPECT_EQ(options.rank, 3);
  EXPECT_EQ(options.world_size, 4);
  setenv("RANK", "three", 1);
  expect_error_containing([] { RendezvousOptions::from_environment(); }, {"RANK='three'"});
  for (const char* name : {"MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE"})
    unsetenv(name);
  auto bad = loopback(2, 2, 29500);
  expect_error_containing([&] { bad.validate(); }, {"--rank must be in [0, 1]"});
}

TEST(GradientAverager, PacksParametersIntoBucketsOfOneDtypeUpToTheCap) {
  std::vector<torch::Tensor> parameters{torch::zeros({100}), torch::zeros({100}),
                                        torch::zeros({300}), torch::zeros({10}, torch::kFloat64),
                                        torch::zeros({10})};
  // 400 bytes a bucket: [100], [100], [300 alone, larger than the cap], [10 double], [10]
  const GradientAverager averager(parameters, 400);
  EXPECT_EQ(averager.buckets(), 5);
  EXPECT_EQ(averager.bytes_per_step(), 4 * 510 + 8 * 10);
  EXPECT_EQ(GradientAverager(parameters, 1 << 20).buckets(), 3)
      << "a new bucket at each dtype change";
}

TEST(GradientAverager, AveragesOverTwoRanksWithOneAllReducePerBucket) {
  on_ranks(2, [](Communicator& communicator) {
    const auto rank = static_cast<float>(communicator.rank());
    std::vector<torch::Tensor> parameters{torch::zeros({2, 3}, torch::requires_grad()),
                                          torch::zeros({5}, torch::requires_grad()),
                                          torch::zeros({4}, torch::requires_grad())};
    parameters[0].mutable_grad() = torch::full({2, 3}, 2.0f + rank);
    parameters[1].mutable_grad() = torch::arange(5, torch::kFloat32) * (rank + 1.0f);
    // parameters[2] has no gradient on any rank: it counts as zero
    GradientAverager averager(parameters, 24);  // [6 floats], [5 floats], [4 floats]
    ASSERT_EQ(averager.buckets(), 3);
    const int64_t calls_before = communicator.collective_calls();
    averager.average(communicator);
    EXPECT_EQ(communicator.collective_calls() - calls_before, 3);
    EXPECT_TRUE(torch::allclose(parameters[0].grad(), torch::full({2, 3}, 2.5f)));
    EXPECT_TRUE(torch::allclose(parameters[1].grad(), torch::arange(5, torch::kFloat32) * 1.5f));
    EXPECT_TRUE(torch::equal(parameters[2].grad(), torch::zeros({4})));
  });
}

TEST(ReplicaSync, BroadcastsRankZerosWeightsAndResetsADriftedReplica) {
  on_ranks(2, [](Communicator& communicator) {
    torch::manual_seed(communicator.rank());  // different initial weights on each rank
    torch::nn::Linear layer(4, 3);
    broadcast_from_leader(*layer, communicator);
    const uint64_t synchronised = replica_fingerprint(*layer);
    EXPECT_TRUE(resynchronise_replicas(*layer, communicator).empty());
    if (communicator.rank() == 1) {
      torch::NoGradGuard no_grad;
      layer->weight[0][0].add_(1e-6);
    }
    EXPECT_EQ(resynchronise_replicas(*layer, communicator), std::vector<int64_t>{1});
    EXPECT_EQ(replica_fingerprint(*layer), synchronised);
  });
}

#ifdef POSENC_CLI_PATH
// The posenc command line on the tiny 3-class task, with one thread per process.
std::vector<std::string> tiny_run_command(const TemporaryFolder& data, const std::string& out,
                                          int64_t batch_size, int64_t epochs = 2) {
  return {POSENC_CLI_PATH,
          "train",
          "--out",
          out,
          "--data",
          "idx",
          "--train-images",
          data.path("train-images"),
          "--train-labels",
          data.path("train-labels"),
          "--test-images",
          data.path("test-images"),
          "--test-labels",
          data.path("test-labels"),
          "--model",
          "nano",
          "--dim",
          "16",
          "--depth",
          "2",
          "--heads",
          "2",
          "--image-size",
          "8",
          "--drop-path",
          "0",
          "--epochs",
          std::to_string(epochs),
          "--warmup-epochs",
          "0.5",
          "--lr",
          "3e-3",
          "--hflip",
          "0",
          "--train-resolutions",
          "8,12",
          "--batch-size",
          std::to_string(batch_size),
          "--threads",
          "1"};
}

template <typename... More>
std::vector<std::string> with(std::vector<std::string> command, More... more) {
  (command.push_back(more), ...);
  return command;
}

// Runs a command to its end (at most two minutes); returns its exit code and its output.
std::pair<int, std::string> run_to_end(const std::vector<std::string>& command,
                                       const std::string& log) {
  ChildProcess process(command, log);
  const auto status = process.wait_for(120.0);
  const std::string output = read_text_file(log);
  if (!status) {
    ADD_FAILURE() << "still running after 120 s:\n" << output;
    return {-1, output};
  }
  return {WIFEXITED(*status) ? WEXITSTATUS(*status) : 128 + WTERMSIG(*status), output};
}

std::vector<nlohmann::json> metrics_lines(const std::string& path) {
  std::vector<nlohmann::json> lines;
  std::istringstream text(read_text_file(path));
  for (std::string line; std::getline(text, line);)
    lines.push_back(nlohmann::json::parse(line));
  return lines;
}

// Waits (at most a minute) until the run writing into `out` has finished an epoch, which
// leaves a checkpoint behind; fails if `process` ends first.
::testing::AssertionResult runs_until_first_epoch_ends(ChildProcess& process,
                                                       const std::string& out,
                                                       const std::string& log) {
  const auto started = std::chrono::steady_clock::now();
  while (!std::filesystem::exists(out + "/metrics.jsonl")) {
    if (process.wait_for(0.05))
      return ::testing::AssertionFailure() << "ended before its first epoch:\n"
                                           << read_text_file(log);
    if (std::chrono::steady_clock::now() - started > std::chrono::seconds(60))
      return ::testing::AssertionFailure() << "no epoch within 60 s:\n" << read_text_file(log);
  }
  return ::testing::AssertionSuccess();
}

TEST(DataParallelTraining, TwoRanksWithBatchBReachTheParametersOfOneProcessWithBatch2B) {
  TemporaryFolder folder;
  testing::tiny_image_data(folder);
  const auto [single_code, single_log] =
      run_to_end(tiny_run_command(folder, folder.path("single"), 16), folder.path("single.log"));
  ASSERT_EQ(single_code, 0) << single_log;
  const auto [ranks_code, ranks_log] =
      run_to_end(with(tiny_run_command(folder, folder.path("ranks"), 8), "--nproc", "2"),
                 folder.path("ranks.log"));
  ASSERT_EQ(ranks_code, 0) << ranks_log;
  EXPECT_NE(ranks_log.find("2 ranks x batch 8 = global batch 16"), std::string::npos) << ranks_log;

  const auto single = load_trained_model(folder.path("single/last.pt"));
  const auto ranks = load_trained_model(folder.path("ranks/last.pt"));
  auto expected = single.model->named_parameters();
  double largest_difference = 0.0;
  for (const auto& item : ranks.model->named_parameters()) {
    largest_difference = std::max(largest_difference,
                                  (item.value() - expected[item.key()]).abs().max().item<double>());
  }
  // 12 AdamW steps; the ranks sum each batch's gradients in another order than one process
  EXPECT_LT(largest_difference, 1e-4);  // 4e-6 measured
  EXPECT_GT(largest_difference, 0.0) << "suspicious: were both runs really different processes?";
  // every rank held bitwise the same parameters at every checkpoint
  const auto epochs = metrics_lines(folder.path("ranks/metrics.jsonl"));
  ASSERT_EQ(epochs.size(), 2u);
  for (const auto& epoch : epochs) {
    EXPECT_EQ(epoch.at("ranks"), 2);
    EXPECT_EQ(epoch.at("ranks_in_sync"), true);
  }
  const auto single_epochs = metrics_lines(folder.path("single/metrics.jsonl"));
  EXPECT_NEAR(epochs[1].at("train_loss").get<double>(),
              single_epochs[1].at("train_loss").get<double>(), 1e-4);
}

TEST(DataParallelTraining, KillingARankStopsTheOtherWithAClearErrorWithinTheTimeout) {
  TemporaryFolder folder;
  testing::tiny_image_data(folder);
  const std::string port = std::to_string(unused_local_port());
  const double timeout = 20.0;
  const auto rank_flags = [&](const char* rank) {
    return std::vector<std::string>{"--world-size",  "2",  "--rank",    rank,
                                    "--master-port", port, "--timeout", "20s"};
  };
  auto leader_command = tiny_run_command(folder, folder.path("run"), 8, /*epochs=*/1000);
  for (const auto& flag : rank_flags("0"))
    leader_command.push_back(flag);
  std::vector<std::string> follower_command{POSENC_CLI_PATH, "train", "--threads", "1"};
  for (const auto& flag : rank_flags("1"))
    follower_command.push_back(flag);
  ChildProcess leader(leader_command, folder.path("rank0.log"));
  ChildProcess follower(follower_command, folder.path("rank1.log"));
  // a checkpoint first, so there is something the failure must not damage
  ASSERT_TRUE(runs_until_first_epoch_ends(leader, folder.path("run"), folder.path("rank0.log")));
  follower.send(SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  const auto status = leader.wait_for(timeout + 10.0);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  const std::string log = read_text_file(folder.path("rank0.log"));
  ASSERT_TRUE(status.has_value()) << "rank 0 still runs " << seconds << " s after rank 1 died";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) != 0) << log;
  EXPECT_LT(seconds, timeout) << "a dead peer closes its connections: no need to wait";
  EXPECT_NE(log.find("rank 1 stopped answering"), std::string::npos) << log;
  EXPECT_NE(log.find("--resume"), std::string::npos) << log;
  EXPECT_NO_THROW(load_trained_model(folder.path("run/last.pt")));
}

// The leader's last words on a stop: "interrupted at epoch E step S; checkpoint ... written", or
// "interrupted in epoch E's test pass; ..." when the signal lands while the test set is scored.
bool says_interrupted_with_checkpoint(const std::string& log) {
  static const std::regex stopped(
      R"(interrupted (at epoch \d+ step \d+|in epoch \d+'s test pass); checkpoint .* written)");
  return std::regex_search(log, stopped);
}

// One process stopped by SIGTERM exits 143 after its checkpoint, not 0 as a finished run.
TEST(TrainCommandStops, SigtermExitsAsTheSignalDoesAfterTheCheckpoint) {
  TemporaryFolder folder;
  testing::tiny_image_data(folder);
  ChildProcess run(tiny_run_command(folder, folder.path("run"), 8, /*epochs=*/1000),
                   folder.path("run.log"));
  ASSERT_TRUE(runs_until_first_epoch_ends(run, folder.path("run"), folder.path("run.log")));
  run.send(SIGTERM);
  const auto status = run.wait_for(60.0);
  const std::string log = read_text_file(folder.path("run.log"));
  ASSERT_TRUE(status.has_value()) << log;
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 128 + SIGTERM) << log;
  EXPECT_TRUE(says_interrupted_with_checkpoint(log)) << log;
  EXPECT_NO_THROW(load_trained_model(folder.path("run/last.pt")));
}

TEST(DataParallelTraining, CtrlCToTheLauncherStopsEveryRankAtOneStepWithACheckpoint) {
  TemporaryFolder folder;
  testing::tiny_image_data(folder);
  ChildProcess launcher(
      with(tiny_run_command(folder, folder.path("run"), 8, /*epochs=*/1000), "--nproc", "2"),
      folder.path("run.log"));
  ASSERT_TRUE(runs_until_first_epoch_ends(launcher, folder.path("run"), folder.path("run.log")));
  launcher.send(SIGINT);
  const auto status = launcher.wait_for(60.0);
  const std::string log = read_text_file(folder.path("run.log"));
  ASSERT_TRUE(status.has_value()) << log;
  // as a process stopped by Ctrl-C: `train && eval` does not go on with an unfinished run
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 128 + SIGINT) << log;
  EXPECT_TRUE(says_interrupted_with_checkpoint(log)) << log;
  EXPECT_EQ(log.find("error"), std::string::npos) << "both ranks stop at the same step:\n" << log;
  EXPECT_NO_THROW(load_trained_model(folder.path("run/last.pt")));
}

TEST(DataParallelTraining, ARunOfTwoRanksResumesOnOneWithTheSameGlobalBatch) {
  TemporaryFolder folder;
  testing::tiny_image_data(folder);
  const std::string out = folder.path("run");
  const auto [first_code, first_log] =
      run_to_end(with(tiny_run_command(folder, out, 8, /*epochs=*/1), "--nproc", "2"),
                 folder.path("first.log"));
  ASSERT_EQ(first_code, 0) << first_log;
  const auto [code, log] = run_to_end(
      {POSENC_CLI_PATH, "train", "--out", out, "--resume", "--epochs", "2", "--threads", "1"},
      folder.path("second.log"));
  ASSERT_EQ(code, 0) << log;
  EXPECT_NE(log.find("resuming a run of 2 ranks on 1: global batch 16, 16 per rank"),
            std::string::npos)
      << log;
  const auto epochs = metrics_lines(out + "/metrics.jsonl");
  ASSERT_EQ(epochs.size(), 2u);
  EXPECT_EQ(epochs[0].at("ranks"), 2);
  EXPECT_EQ(epochs[1].at("ranks"), 1);
  EXPECT_EQ(load_trained_model(out + "/last.pt").config.training.batch_size, 16);
}

#endif  // POSENC_CLI_PATH

}  // namespace
}  // namespace posenc
