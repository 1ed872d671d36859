#include "posenc/train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>

#include <c10/util/Exception.h>
#include <torch/torch.h>

#include "posenc/data/image_resize.h"
#include "posenc/distributed/gradient_averager.h"
#include "posenc/distributed/replica_sync.h"
#include "posenc/train/checkpoint.h"
#include "posenc/train/evaluation.h"
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

// What rank 0 hands the other ranks before training: the run configuration (data properties
// and normalisation included) and, when resuming, the checkpoint's bytes.
struct RunStart {
  RunConfig config;
  bool resume = false;
  CheckpointBytes checkpoint;
};

RunStart share_run_start(RunStart start, Communicator& communicator) {
  if (communicator.world_size() == 1)
    return start;
  std::string message;
  if (communicator.is_leader()) {
    message = nlohmann::json{{"config", start.config.to_json()},
                             {"resume", start.resume},
                             {"checkpoint", start.checkpoint.name}}
                  .dump();
  }
  communicator.broadcast_bytes_from_leader(message, "receiving the run configuration from rank 0");
  const auto json = nlohmann::json::parse(message);
  start.config = RunConfig::from_json(json.at("config"));
  start.resume = json.at("resume").get<bool>();
  start.checkpoint.name = "rank 0's " + json.at("checkpoint").get<std::string>();
  if (start.resume)
    communicator.broadcast_bytes_from_leader(start.checkpoint.bytes,
                                             "receiving the checkpoint from rank 0");
  return start;
}

struct TrainTestData {
  ImageDataset train;
  ImageDataset test;
};

TrainTestData load_data(const RunConfig& config) {
  TrainTestData data{config.data.load("train"), config.data.load("test")};
  TORCH_CHECK(
      data.test.channels() == data.train.channels() && data.test.classes() == data.train.classes(),
      "test data (", data.test.channels(), " channels, ", data.test.classes(),
      " classes) does not match training data (", data.train.channels(), " channels, ",
      data.train.classes(), " classes)");
  return data;
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

// The training loop shared by new and resumed runs, and by every rank of a data-parallel run
// (rank 0 alone writes the checkpoint, metrics, plot and progress).
TrainingOutcome run_training(RunStart start, const std::string& out_dir,
                             Communicator& communicator) {
  const bool leader = communicator.is_leader();
  const std::string checkpoint = checkpoint_path(out_dir);
  std::optional<TrainTestData> data;
  if (leader) {
    start.config.training.validate();
    data = load_data(start.config);
    if (!start.resume) {
      start.config.model.image_channels = data->train.channels();
      start.config.model.classes = data->train.classes();
      start.config.class_names = data->train.class_names;
      start.config.normalization = Normalization::measure(data->train);
    }
    // after every input was checked, before any time is spent training
    prepare_output_folder(out_dir);
  }
  start = share_run_start(std::move(start), communicator);
  if (!leader)
    data = load_data(start.config);
  RunConfig& config = start.config;
  TORCH_CHECK(config.model.image_channels == data->train.channels() &&
                  config.model.classes == data->train.classes(),
              "the run's model expects ", config.model.image_channels, " channels and ",
              config.model.classes, " classes but the data has ", data->train.channels(), " and ",
              data->train.classes());

  torch::manual_seed(config.training.seed);
  VisionTransformer model(config.model);
  auto [decayed, not_decayed] = model->weight_decay_groups();
  auto optimizer = make_adamw(decayed, not_decayed, config.training);
  TrainingProgress progress;
  if (start.resume) {
    load_model_tensors(start.checkpoint, *model);
    progress = load_training_state(start.checkpoint, optimizer);
  }
  adopt_world_size(config.training, progress, start.resume, communicator);
  broadcast_from_leader(*model, communicator);
  seed_training_generator(progress, start.resume, config.training.seed, communicator);
  const auto& training = config.training;
  const nlohmann::json config_json = config.to_json();

  BatchLoader loader(data->train, training.batch_size, /*shuffle=*/true, /*drop_last=*/true,
                     training.augmentation, config.normalization, training.seed,
                     training.train_resolutions,
                     Shard{communicator.rank(), communicator.world_size()});
  GradientAverager gradients(model->parameters());
  const int64_t steps_per_epoch = loader.batches_per_epoch();
  const auto warmup_steps =
      static_cast<int64_t>(std::round(training.warmup_epochs * steps_per_epoch));
  const CosineSchedule schedule(training.learning_rate, training.min_learning_rate, warmup_steps,
                                training.epochs * steps_per_epoch);
  std::optional<MetricsLog> metrics;
  std::optional<ProgressBar> bar;
  if (leader) {
    metrics.emplace(out_dir + "/metrics.jsonl");
    metrics->truncate_from(progress.epoch);
    bar.emplace(training.epochs, steps_per_epoch);
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
    const auto drifted = resynchronise_replicas(*model, communicator);
    if (leader) {
      if (!drifted.empty()) {
        std::fprintf(stderr,
                     "warning: the replicas of %zu rank(s) differed from rank 0's in the last "
                     "bits (CPUs that round differently?); they were reset to rank 0's\n",
                     drifted.size());
      }
      save_checkpoint(checkpoint, config_json, *model, &optimizer, progress);
    }
    return drifted.empty();
  };

  TrainingOutcome outcome;
  outcome.checkpoint = checkpoint;
  if (leader) {
    int64_t parameter_count = 0;
    for (const auto& parameter : model->parameters())
      parameter_count += parameter.numel();
    std::fprintf(stderr,
                 "training %lld parameters, %lld steps per epoch, %s at epoch %lld step %lld\n",
                 static_cast<long long>(parameter_count), static_cast<long long>(steps_per_epoch),
                 start.resume ? "resuming" : "starting", static_cast<long long>(progress.epoch + 1),
                 static_cast<long long>(progress.batch_in_epoch + 1));
    if (communicator.world_size() > 1) {
      std::fprintf(stderr,
                   "%lld ranks x batch %lld = global batch %lld, %d threads per rank; each step "
                   "all-reduces %.2f MB of gradients in %lld bucket(s)\n",
                   static_cast<long long>(communicator.world_size()),
                   static_cast<long long>(training.batch_size),
                   static_cast<long long>(training.batch_size * communicator.world_size()),
                   at::get_num_threads(), static_cast<double>(gradients.bytes_per_step()) / 1e6,
                   static_cast<long long>(gradients.buckets()));
    }
  }

  for (int64_t epoch = progress.epoch; epoch < training.epochs; ++epoch) {
    loader.start_epoch(epoch, progress.batch_in_epoch);
    model->train();
    if (progress.batch_in_epoch == 0)
      progress.epoch_started_at = elapsed();
    while (auto batch = loader.next()) {
      const int64_t height = batch->resolution > 0 ? batch->resolution : config.model.image_height;
      const int64_t width = batch->resolution > 0 ? batch->resolution : config.model.image_width;
      auto images = resize_images(batch->images, height, width);
      set_learning_rate(optimizer, schedule.at(progress.global_step));
      optimizer.zero_grad();
      auto logits = model->forward(images);
      auto loss = torch::nn::functional::cross_entropy(
          logits, batch->labels,
          torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(
              training.label_smoothing));
      const auto count = static_cast<double>(batch->labels.size(0));
      const bool over_budget = training.time_budget_seconds > 0.0 &&
                               elapsed() - elapsed_before >= training.time_budget_seconds;
      // summed over the ranks: loss x images, correct, images, and the stop requests, so that
      // every rank sees the global loss and all stop at the same step
      auto step = torch::tensor(
          {loss.item<double>() * count,
           static_cast<double>(logits.argmax(1).eq(batch->labels).sum().item<int64_t>()), count,
           InterruptGuard::received() != 0 ? 1.0 : 0.0, over_budget ? 1.0 : 0.0},
          torch::kFloat64);
      communicator.all_reduce_sum(step, "summing the step's loss over the ranks");
      const auto sums = step.accessor<double, 1>();
      const double loss_value = sums[0] / sums[2];
      TORCH_CHECK(std::isfinite(loss_value), "the loss became ", loss_value, " at epoch ",
                  epoch + 1, ", step ", progress.batch_in_epoch + 1, " (optimiser step ",
                  progress.global_step + 1, "); training stopped without saving. ",
                  !leader                  ? std::string("Rank 0 keeps the last good checkpoint.")
                  : fs::exists(checkpoint) ? "The last good checkpoint is " + checkpoint + "."
                                           : std::string("No checkpoint had been written yet."),
                  " Lower --lr, or check the data for NaN/Inf values");
      loss.backward();
      gradients.average(communicator);
      if (training.gradient_clip > 0.0) {
        torch::nn::utils::clip_grad_norm_(model->parameters(), training.gradient_clip);
      }
      optimizer.step();
      ++progress.global_step;
      ++progress.batch_in_epoch;
      progress.epoch_loss_sum += sums[0];
      progress.epoch_correct += static_cast<int64_t>(sums[1]);
      progress.epoch_images += static_cast<int64_t>(sums[2]);
      if (bar)
        bar->update(epoch, progress.batch_in_epoch, loss_value, static_cast<int64_t>(sums[2]));

      const bool interrupted = sums[3] > 0.0;
      if (interrupted || sums[4] > 0.0) {
        if (bar)
          bar->finish_epoch();
        save();
        outcome.status = interrupted ? TrainingOutcome::Status::Interrupted
                                     : TrainingOutcome::Status::TimeBudgetReached;
        outcome.epochs_done = epoch;
        if (leader) {
          std::fprintf(stderr,
                       "%s at epoch %lld step %lld; checkpoint %s written. Continue with "
                       "--resume.\n",
                       interrupted ? "interrupted" : "time budget reached",
                       static_cast<long long>(epoch + 1),
                       static_cast<long long>(progress.batch_in_epoch), checkpoint.c_str());
        }
        return outcome;
      }
    }
    if (bar)
      bar->finish_epoch();
    const double epoch_seconds = elapsed() - progress.epoch_started_at;
    const auto test =
        evaluate_across_ranks(model, data->test, config.normalization, config.model.image_height,
                              config.model.image_width, training.eval_batch_size, communicator);
    const auto epoch_images = static_cast<double>(std::max<int64_t>(1, progress.epoch_images));
    nlohmann::json entry = {
        {"epoch", epoch + 1},
        {"train_loss", progress.epoch_loss_sum / epoch_images},
        {"train_accuracy", static_cast<double>(progress.epoch_correct) / epoch_images},
        {"test_loss", test.loss},
        {"test_accuracy", test.accuracy},
        {"learning_rate", schedule.at(progress.global_step - 1)},
        {"epoch_seconds", epoch_seconds},
        {"train_images_per_second", static_cast<double>(progress.epoch_images) / epoch_seconds},
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
      metrics->record_epoch(entry, training.epochs, out_dir + "/curves.png");
  }
  outcome.status = TrainingOutcome::Status::Completed;
  outcome.epochs_done = training.epochs;
  return outcome;
}

}  // namespace

TrainingOutcome train(RunConfig config, const std::string& out_dir, Communicator& communicator) {
  TORCH_CHECK(communicator.is_leader(), "train() is rank 0's call; rank ", communicator.rank(),
              " calls join_training()");
  TORCH_CHECK(!fs::exists(checkpoint_path(out_dir)), out_dir, " already holds a checkpoint (",
              checkpoint_path(out_dir),
              "); pass --resume to continue that run, or choose another --out");
  return run_training({std::move(config), /*resume=*/false, {}}, out_dir, communicator);
}

TrainingOutcome train(RunConfig config, const std::string& out_dir) {
  Communicator one_process;
  return train(std::move(config), out_dir, one_process);
}

TrainingOutcome resume_training(const std::string& out_dir, const ResumeOverrides& overrides,
                                Communicator& communicator) {
  TORCH_CHECK(communicator.is_leader(), "resume_training() is rank 0's call; rank ",
              communicator.rank(), " calls join_training()");
  const std::string checkpoint = checkpoint_path(out_dir);
  TORCH_CHECK(fs::exists(checkpoint), "--resume: no checkpoint at ", checkpoint,
              "; start without --resume");
  RunStart start{{}, /*resume=*/true, CheckpointBytes::read(checkpoint)};
  start.config = RunConfig::from_json(read_checkpoint_config(start.checkpoint));
  if (overrides.epochs)
    start.config.training.epochs = *overrides.epochs;
  start.config.training.time_budget_seconds = overrides.time_budget_seconds;
  return run_training(std::move(start), out_dir, communicator);
}

TrainingOutcome resume_training(const std::string& out_dir, const ResumeOverrides& overrides) {
  Communicator one_process;
  return resume_training(out_dir, overrides, one_process);
}

TrainingOutcome join_training(Communicator& communicator) {
  TORCH_CHECK(!communicator.is_leader(),
              "join_training() is for ranks other than 0; rank 0 calls train() or "
              "resume_training()");
  return run_training({}, /*out_dir=*/"", communicator);
}

}  // namespace posenc
