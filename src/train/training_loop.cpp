#include "train/training_loop.h"

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <optional>

#include <c10/util/Exception.h>

#include "posenc/distributed/gradient_averager.h"
#include "posenc/distributed/replica_sync.h"
#include "posenc/train/learning_rate_schedule.h"
#include "train/interrupt.h"
#include "train/metrics_log.h"
#include "train/progress_bar.h"
#include "train/training_session.h"

namespace posenc {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Seeds LibTorch's generator (dropout, stochastic depth) for training. One process keeps the
// stream that initialised the model; in a data-parallel run every rank draws its own stream, and
// a resumed run continues each rank's stream where it stopped.
void seed_training_generator(const TrainingProgress& progress, bool resumed, uint64_t seed,
                             const Communicator& communicator) {
  const auto rank = static_cast<uint64_t>(communicator.rank());
  const auto ranks = static_cast<size_t>(communicator.world_size());
  if (resumed && progress.rng_states.size() == ranks) {
    restore_cpu_rng_state(progress.rng_states[rank]);
  } else if (resumed && !progress.rng_states.empty()) {
    // another world size: the streams cannot continue, so each rank starts a new one
    torch::manual_seed((seed + static_cast<uint64_t>(progress.global_step)) ^
                       (0x9E3779B97F4A7C15ull * (rank + 1)));
  } else if (!resumed && rank > 0) {
    torch::manual_seed(seed ^ (0x9E3779B97F4A7C15ull * (rank + 1)));
  }
}

// A resumed run keeps the global batch (the recipe) when the number of ranks changes: the
// batch per rank becomes global / ranks. Progress counts global batches, so the epoch, the step
// within it and the learning-rate schedule carry over unchanged.
void adopt_world_size(TrainingOptions& training, TrainingProgress& progress, bool resumed,
                      const Communicator& communicator) {
  const int64_t ranks = communicator.world_size();
  if (resumed && progress.world_size != ranks) {
    const int64_t global_batch = training.batch_size * progress.world_size;
    TORCH_CHECK(global_batch % ranks == 0, "the checkpoint was written by ", progress.world_size,
                " ranks with a global batch of ", global_batch, ", which ", ranks,
                " ranks cannot share equally; resume with a number of ranks that divides ",
                global_batch);
    if (communicator.is_leader()) {
      std::fprintf(
          stderr, "resuming a run of %lld ranks on %lld: global batch %lld, %lld per rank\n",
          static_cast<long long>(progress.world_size), static_cast<long long>(ranks),
          static_cast<long long>(global_batch), static_cast<long long>(global_batch / ranks));
    }
    training.batch_size = global_batch / ranks;
  }
  progress.world_size = ranks;
}

int64_t parameter_count(torch::nn::Module& model) {
  int64_t count = 0;
  for (const auto& parameter : model.parameters())
    count += parameter.numel();
  return count;
}

}  // namespace

TrainingOutcome run_training_loop(TrainingTask& task, const LoopStart& start,
                                  Communicator& communicator) {
  const bool leader = communicator.is_leader();
  const std::string checkpoint = checkpoint_path(start.out_dir);
  auto& model = task.model();
  auto [decayed, not_decayed] = task.weight_decay_groups();
  auto optimizer = make_adamw(decayed, not_decayed, task.training());
  TrainingProgress progress;
  if (start.resume) {
    TORCH_INTERNAL_ASSERT(start.checkpoint != nullptr);
    load_model_tensors(*start.checkpoint, model);
    progress = load_training_state(*start.checkpoint, optimizer);
  }
  adopt_world_size(task.training(), progress, start.resume, communicator);
  broadcast_from_leader(model, communicator);
  seed_training_generator(progress, start.resume, task.training().seed, communicator);
  const int64_t steps_per_epoch = task.begin(communicator);
  const TrainingOptions& training = task.training();
  const nlohmann::json config_json = task.config_json();

  GradientAverager gradients(model.parameters());
  const auto warmup_steps =
      static_cast<int64_t>(std::round(training.warmup_epochs * steps_per_epoch));
  const CosineSchedule schedule(training.learning_rate, training.min_learning_rate, warmup_steps,
                                training.epochs * steps_per_epoch);
  const int64_t global_batch = training.batch_size * communicator.world_size();
  std::optional<MetricsLog> metrics;
  std::optional<ProgressBar> bar;
  if (leader) {
    metrics.emplace(start.out_dir + "/metrics.jsonl");
    metrics->truncate_from(progress.epoch);
    bar.emplace(training.epochs, steps_per_epoch, task.samples_unit());
  }
  InterruptGuard interrupt_guard;
  const auto session_start = Clock::now();
  const double elapsed_before = progress.elapsed_seconds;
  auto elapsed = [&] {
    return elapsed_before + std::chrono::duration<double>(Clock::now() - session_start).count();
  };
  // A collective: every rank calls it at the same step. Returns whether the replicas had
  // drifted apart (and were made equal to rank 0's again).
  auto save = [&] {
    progress.elapsed_seconds = elapsed();
    progress.rng_states =
        communicator.all_gather(cpu_rng_state(), "gathering the ranks' random generator states");
    const auto drifted = resynchronise_replicas(model, communicator);
    if (leader) {
      if (!drifted.empty()) {
        std::fprintf(stderr,
                     "warning: the replicas of %zu rank(s) differed from rank 0's in the last "
                     "bits (CPUs that round differently?); they were reset to rank 0's\n",
                     drifted.size());
      }
      save_checkpoint(checkpoint, config_json, model, &optimizer, progress);
    }
    return drifted.empty();
  };

  TrainingOutcome outcome;
  outcome.checkpoint = checkpoint;
  // Ctrl-C, SIGTERM or --time-budget: a checkpoint of where the run is, then out. `where` ends
  // "at epoch 2 step 30" or "in epoch 2's test pass".
  auto stop = [&](bool interrupted, int64_t epoch, const std::string& where) {
    save();
    outcome.status = interrupted ? TrainingOutcome::Status::Interrupted
                                 : TrainingOutcome::Status::TimeBudgetReached;
    if (interrupted)
      outcome.signal = InterruptGuard::received() != 0 ? InterruptGuard::received() : SIGINT;
    outcome.epochs_done = epoch;
    if (leader) {
      std::fprintf(stderr, "%s %s; checkpoint %s written. Continue with --resume.\n",
                   interrupted ? "interrupted" : "time budget reached", where.c_str(),
                   checkpoint.c_str());
    }
    return outcome;
  };
  if (leader) {
    std::fprintf(stderr,
                 "training %lld parameters%s, %lld steps per epoch, %s at epoch %lld step %lld\n",
                 static_cast<long long>(parameter_count(model)), task.describe_data().c_str(),
                 static_cast<long long>(steps_per_epoch), start.resume ? "resuming" : "starting",
                 static_cast<long long>(progress.epoch + 1),
                 static_cast<long long>(progress.batch_in_epoch + 1));
    if (communicator.world_size() > 1) {
      std::fprintf(stderr,
                   "%lld ranks x batch %lld = global batch %lld, %d threads per rank; each step "
                   "all-reduces %.2f MB of gradients in %lld bucket(s)\n",
                   static_cast<long long>(communicator.world_size()),
                   static_cast<long long>(training.batch_size),
                   static_cast<long long>(global_batch), at::get_num_threads(),
                   static_cast<double>(gradients.bytes_per_step()) / 1e6,
                   static_cast<long long>(gradients.buckets()));
    }
  }

  for (int64_t epoch = progress.epoch; epoch < training.epochs; ++epoch) {
    task.start_epoch(epoch, progress.batch_in_epoch);
    model.train();
    if (progress.batch_in_epoch == 0)
      progress.epoch_started_at = elapsed();
    while (progress.batch_in_epoch < steps_per_epoch) {
      set_learning_rate(optimizer, schedule.at(progress.global_step));
      optimizer.zero_grad();
      const StepLoss step_loss = task.forward_next_batch();
      const bool over_budget = training.time_budget_seconds > 0.0 &&
                               elapsed() - elapsed_before >= training.time_budget_seconds;
      // summed over the ranks: the loss sum, correct, counted, and the stop requests, so that
      // every rank sees the global loss and all stop at the same step
      auto step = torch::tensor({step_loss.loss_sum, static_cast<double>(step_loss.correct),
                                 static_cast<double>(step_loss.counted),
                                 InterruptGuard::received() != 0 ? 1.0 : 0.0,
                                 over_budget ? 1.0 : 0.0, step_loss.tokens,
                                 step_loss.padded_tokens},
                                torch::kFloat64);
      communicator.all_reduce_sum(step, "summing the step's loss over the ranks");
      const auto sums = step.accessor<double, 1>();
      const double loss_value = sums[0] / std::max(sums[2], 1.0);
      TORCH_CHECK(std::isfinite(loss_value), "the loss became ", loss_value, " at epoch ",
                  epoch + 1, ", step ", progress.batch_in_epoch + 1, " (optimiser step ",
                  progress.global_step + 1, "); training stopped without saving. ",
                  !leader                  ? std::string("Rank 0 keeps the last good checkpoint.")
                  : fs::exists(checkpoint) ? "The last good checkpoint is " + checkpoint + "."
                                           : std::string("No checkpoint had been written yet."),
                  " Lower --lr, or check the data for NaN/Inf values");
      step_loss.loss.backward();
      gradients.average(communicator);
      if (training.gradient_clip > 0.0)
        torch::nn::utils::clip_grad_norm_(model.parameters(), training.gradient_clip);
      optimizer.step();
      ++progress.global_step;
      ++progress.batch_in_epoch;
      progress.epoch_loss_sum += sums[0];
      progress.epoch_correct += static_cast<int64_t>(sums[1]);
      progress.epoch_images += static_cast<int64_t>(sums[2]);
      if (bar)
        bar->update(epoch, progress.batch_in_epoch, loss_value, global_batch, sums[5], sums[6]);

      const bool interrupted = sums[3] > 0.0;
      if (interrupted || sums[4] > 0.0) {
        if (bar)
          bar->finish_epoch();
        return stop(interrupted, epoch,
                    c10::str("at epoch ", epoch + 1, " step ", progress.batch_in_epoch));
      }
    }
    if (bar)
      bar->finish_epoch();
    const double epoch_seconds = elapsed() - progress.epoch_started_at;
    // The test pass stops at Ctrl-C too (it can take longer than many steps). The checkpoint
    // then holds the epoch's trained steps, and --resume runs this test pass again.
    const auto test =
        task.evaluate(communicator, [] { return InterruptGuard::received() != 0; });
    if (!test.complete)
      return stop(/*interrupted=*/true, epoch, c10::str("in epoch ", epoch + 1, "'s test pass"));
    const double test_seconds = elapsed() - progress.epoch_started_at - epoch_seconds;
    if (bar)
      bar->set_test_seconds(test_seconds);
    const auto counted = static_cast<double>(std::max<int64_t>(1, progress.epoch_images));
    nlohmann::json entry = {
        {"epoch", epoch + 1},
        {"train_loss", progress.epoch_loss_sum / counted},
        {"train_accuracy", static_cast<double>(progress.epoch_correct) / counted},
        {"test_loss", test.loss},
        {"test_accuracy", test.accuracy},
        {"learning_rate", schedule.at(progress.global_step - 1)},
        {"epoch_seconds", epoch_seconds},  // the training steps; the test pass apart
        {"test_seconds", test_seconds},
        {"train_" + task.samples_name() + "_per_second",
         static_cast<double>(steps_per_epoch * global_batch) / epoch_seconds},
        {"elapsed_seconds", elapsed()},
        {"ranks", communicator.world_size()}};
    progress.epoch = epoch + 1;
    progress.batch_in_epoch = 0;
    progress.epoch_loss_sum = 0.0;
    progress.epoch_correct = 0;
    progress.epoch_images = 0;
    entry["ranks_in_sync"] = save();
    outcome.last_test_accuracy = test.accuracy;
    if (leader)
      metrics->record_epoch(entry, training.epochs, start.out_dir + "/curves.png");
  }
  outcome.status = TrainingOutcome::Status::Completed;
  outcome.epochs_done = training.epochs;
  return outcome;
}

}  // namespace posenc
