#include "posenc/train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>

#include <ATen/CPUGeneratorImpl.h>
#include <c10/util/Exception.h>
#include <torch/torch.h>

#include "posenc/data/image_resize.h"
#include "posenc/train/checkpoint.h"
#include "posenc/train/evaluation.h"
#include "posenc/train/learning_rate_schedule.h"
#include "train/interrupt.h"
#include "train/metrics_log.h"
#include "train/progress_bar.h"

namespace posenc {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Creates the output folder and proves it writable before any time is spent training.
void prepare_output_folder(const std::string& out_dir) {
  std::error_code error;
  fs::create_directories(out_dir, error);
  TORCH_CHECK(!error, "cannot create output folder ", out_dir, ": ", error.message());
  const std::string probe = out_dir + "/.posenc-write-test";
  {
    std::ofstream file(probe);
    file << "probe";
    file.flush();
    TORCH_CHECK(file.good(), "output folder ", out_dir,
                " is not writable (or the disk is full); choose another --out");
  }
  fs::remove(probe, error);
}

torch::optim::AdamW make_optimizer(VisionTransformer& model, const TrainingOptions& training) {
  using torch::optim::AdamWOptions;
  auto [decayed, not_decayed] = model->weight_decay_groups();
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(
      decayed, std::make_unique<AdamWOptions>(
                   AdamWOptions(training.learning_rate).weight_decay(training.weight_decay)));
  groups.emplace_back(not_decayed, std::make_unique<AdamWOptions>(
                                       AdamWOptions(training.learning_rate).weight_decay(0.0)));
  return torch::optim::AdamW(std::move(groups), AdamWOptions(training.learning_rate));
}

void set_learning_rate(torch::optim::AdamW& optimizer, double learning_rate) {
  for (auto& group : optimizer.param_groups()) {
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(learning_rate);
  }
}

torch::Tensor rng_state() {
  return at::detail::getDefaultCPUGenerator().get_state();
}

void restore_rng_state(const torch::Tensor& state) {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

std::string checkpoint_path(const std::string& out_dir) {
  return out_dir + "/last.pt";
}

// The training loop shared by new and resumed runs.
TrainingOutcome run_training(RunConfig config, const std::string& out_dir, bool resume) {
  const std::string checkpoint = checkpoint_path(out_dir);
  config.training.validate();

  const ImageDataset train_data = config.data.load("train");
  const ImageDataset test_data = config.data.load("test");
  TORCH_CHECK(
      test_data.channels() == train_data.channels() && test_data.classes() == train_data.classes(),
      "test data (", test_data.channels(), " channels, ", test_data.classes(),
      " classes) does not match training data (", train_data.channels(), " channels, ",
      train_data.classes(), " classes)");
  if (!resume) {
    config.model.image_channels = train_data.channels();
    config.model.classes = train_data.classes();
    config.class_names = train_data.class_names;
    config.normalization = Normalization::measure(train_data);
  }
  TORCH_CHECK(config.model.image_channels == train_data.channels() &&
                  config.model.classes == train_data.classes(),
              "the checkpoint's model expects ", config.model.image_channels, " channels and ",
              config.model.classes, " classes but the data has ", train_data.channels(), " and ",
              train_data.classes());
  const auto& training = config.training;

  torch::manual_seed(training.seed);
  VisionTransformer model(config.model);
  auto optimizer = make_optimizer(model, training);
  TrainingProgress progress;
  if (resume) {
    load_model_tensors(checkpoint, *model);
    progress = load_training_state(checkpoint, optimizer);
    if (progress.rng_state.defined())
      restore_rng_state(progress.rng_state);
  }
  const nlohmann::json config_json = config.to_json();
  // after every input was checked, before any time is spent training
  prepare_output_folder(out_dir);

  BatchLoader loader(train_data, training.batch_size, /*shuffle=*/true, /*drop_last=*/true,
                     training.augmentation, config.normalization, training.seed,
                     training.train_resolutions);
  const int64_t steps_per_epoch = loader.batches_per_epoch();
  const auto warmup_steps =
      static_cast<int64_t>(std::round(training.warmup_epochs * steps_per_epoch));
  const CosineSchedule schedule(training.learning_rate, training.min_learning_rate, warmup_steps,
                                training.epochs * steps_per_epoch);
  MetricsLog metrics(out_dir + "/metrics.jsonl");
  metrics.truncate_from(progress.epoch);
  ProgressBar bar(training.epochs, steps_per_epoch);
  InterruptGuard interrupt_guard;
  const auto session_start = Clock::now();
  const double elapsed_before = progress.elapsed_seconds;
  auto elapsed = [&] {
    return elapsed_before + std::chrono::duration<double>(Clock::now() - session_start).count();
  };
  auto save = [&] {
    progress.elapsed_seconds = elapsed();
    progress.rng_state = rng_state();
    save_checkpoint(checkpoint, config_json, *model, &optimizer, progress);
  };

  TrainingOutcome outcome;
  outcome.checkpoint = checkpoint;
  int64_t parameter_count = 0;
  for (const auto& parameter : model->parameters())
    parameter_count += parameter.numel();
  std::fprintf(stderr,
               "training %lld parameters, %lld steps per epoch, %s at epoch %lld step %lld\n",
               static_cast<long long>(parameter_count), static_cast<long long>(steps_per_epoch),
               resume ? "resuming" : "starting", static_cast<long long>(progress.epoch + 1),
               static_cast<long long>(progress.batch_in_epoch + 1));

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
      const double loss_value = loss.item<double>();
      TORCH_CHECK(std::isfinite(loss_value), "the loss became ", loss_value, " at epoch ",
                  epoch + 1, ", step ", progress.batch_in_epoch + 1, " (optimiser step ",
                  progress.global_step + 1, "); training stopped without saving. ",
                  fs::exists(checkpoint) ? "The last good checkpoint is " + checkpoint + "."
                                         : std::string("No checkpoint had been written yet."),
                  " Lower --lr, or check the data for NaN/Inf values");
      loss.backward();
      if (training.gradient_clip > 0.0) {
        torch::nn::utils::clip_grad_norm_(model->parameters(), training.gradient_clip);
      }
      optimizer.step();
      ++progress.global_step;
      ++progress.batch_in_epoch;
      const int64_t count = batch->labels.size(0);
      progress.epoch_loss_sum += loss_value * count;
      progress.epoch_correct += logits.argmax(1).eq(batch->labels).sum().item<int64_t>();
      progress.epoch_images += count;
      bar.update(epoch, progress.batch_in_epoch, loss_value, count);

      const bool over_budget = training.time_budget_seconds > 0.0 &&
                               elapsed() - elapsed_before >= training.time_budget_seconds;
      if (InterruptGuard::received() != 0 || over_budget) {
        bar.finish_epoch();
        save();
        outcome.status = over_budget ? TrainingOutcome::Status::TimeBudgetReached
                                     : TrainingOutcome::Status::Interrupted;
        outcome.epochs_done = epoch;
        std::fprintf(stderr,
                     "%s at epoch %lld step %lld; checkpoint %s written. Continue with "
                     "--resume.\n",
                     over_budget ? "time budget reached" : "interrupted",
                     static_cast<long long>(epoch + 1),
                     static_cast<long long>(progress.batch_in_epoch), checkpoint.c_str());
        return outcome;
      }
    }
    bar.finish_epoch();
    const double epoch_seconds = elapsed() - progress.epoch_started_at;
    const auto test = evaluate(model, test_data, config.normalization, config.model.image_height,
                               config.model.image_width, training.eval_batch_size);
    const nlohmann::json entry = {
        {"epoch", epoch + 1},
        {"train_loss", progress.epoch_loss_sum / std::max<int64_t>(1, progress.epoch_images)},
        {"train_accuracy",
         static_cast<double>(progress.epoch_correct) / std::max<int64_t>(1, progress.epoch_images)},
        {"test_loss", test.loss},
        {"test_accuracy", test.accuracy},
        {"learning_rate", schedule.at(progress.global_step - 1)},
        {"epoch_seconds", epoch_seconds},
        {"elapsed_seconds", elapsed()}};
    progress.epoch = epoch + 1;
    progress.batch_in_epoch = 0;
    progress.epoch_loss_sum = 0.0;
    progress.epoch_correct = 0;
    progress.epoch_images = 0;
    save();
    metrics.append(entry);
    metrics.plot(out_dir + "/curves.png");
    outcome.last_test_accuracy = test.accuracy;
    std::fprintf(stderr, "epoch %lld/%lld: train loss %.4f, test accuracy %.2f%% (%s)\n",
                 static_cast<long long>(epoch + 1), static_cast<long long>(training.epochs),
                 entry["train_loss"].get<double>(), 100.0 * test.accuracy,
                 format_duration(epoch_seconds).c_str());
  }
  outcome.status = TrainingOutcome::Status::Completed;
  outcome.epochs_done = training.epochs;
  return outcome;
}

}  // namespace

TrainingOutcome train(RunConfig config, const std::string& out_dir) {
  TORCH_CHECK(!fs::exists(checkpoint_path(out_dir)), out_dir, " already holds a checkpoint (",
              checkpoint_path(out_dir),
              "); pass --resume to continue that run, or choose another --out");
  return run_training(std::move(config), out_dir, /*resume=*/false);
}

TrainingOutcome resume_training(const std::string& out_dir, const ResumeOverrides& overrides) {
  const std::string checkpoint = checkpoint_path(out_dir);
  TORCH_CHECK(fs::exists(checkpoint), "--resume: no checkpoint at ", checkpoint,
              "; start without --resume");
  RunConfig config = RunConfig::from_json(read_checkpoint_config(checkpoint));
  if (overrides.epochs)
    config.training.epochs = *overrides.epochs;
  config.training.time_budget_seconds = overrides.time_budget_seconds;
  return run_training(std::move(config), out_dir, /*resume=*/true);
}

}  // namespace posenc
