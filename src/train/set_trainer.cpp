#include "posenc/train/set_training.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>

#include <ATen/CPUGeneratorImpl.h>
#include <c10/util/Exception.h>
#include <torch/torch.h>

#include "core/json_keys.h"
#include "posenc/analysis/encoding_similarity.h"
#include "posenc/train/checkpoint.h"
#include "posenc/train/learning_rate_schedule.h"
#include "train/interrupt.h"
#include "train/metrics_log.h"
#include "train/progress_bar.h"
#include "train/training_session.h"

namespace posenc {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// (B, K, classes), (B, K) -> summed cross-entropy over the tokens with a target
torch::Tensor token_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                         double label_smoothing,
                         torch::nn::functional::CrossEntropyFuncOptions::reduction_t reduction) {
  return torch::nn::functional::cross_entropy(logits.flatten(0, 1), targets.flatten(),
                                              torch::nn::functional::CrossEntropyFuncOptions()
                                                  .ignore_index(-1)
                                                  .label_smoothing(label_smoothing)
                                                  .reduction(reduction));
}

int64_t correct_tokens(const torch::Tensor& logits, const torch::Tensor& targets) {
  return logits.argmax(2).eq(targets).logical_and(targets.ge(0)).sum().item<int64_t>();
}

// The order of the training sets in `epoch`: a permutation drawn from (seed, epoch) alone, so a
// resumed run sees the same batches.
torch::Tensor epoch_order(int64_t sets, uint64_t seed, int64_t epoch) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed * 1000003 + epoch);
  return torch::randperm(sets, generator, torch::kLong);
}

TrainingOutcome run_set_training(SetRunConfig config, const std::string& out_dir,
                                 const std::optional<CheckpointBytes>& resume_from) {
  config.training.validate();
  auto train = config.data.load("train");
  if (!resume_from) {  // a new run's model reads what its training data holds
    config.model.content_dim = train.content_dim();
    config.model.classes = train.classes;
  }
  struct {
    TokenSets train, test;
  } data{fit_to_model(train, config.model, "the training sets"),
         fit_to_model(config.data.load("test"), config.model, "the test sets")};
  prepare_output_folder(out_dir);
  const std::string checkpoint = checkpoint_path(out_dir);

  torch::manual_seed(config.training.seed);
  SetTransformer model(config.model);
  config.model = model->options();  // encoding specs with the G and M they were given
  auto [decayed, not_decayed] = model->weight_decay_groups();
  auto optimizer = make_adamw(decayed, not_decayed, config.training);
  TrainingProgress progress;
  if (resume_from) {
    load_model_tensors(*resume_from, *model);
    progress = load_training_state(*resume_from, optimizer);
    if (!progress.rng_states.empty())
      restore_cpu_rng_state(progress.rng_states.front());
  }
  const auto& training = config.training;
  const nlohmann::json config_json = config.to_json();
  const int64_t steps_per_epoch = data.train.size() / training.batch_size;
  TORCH_CHECK(steps_per_epoch >= 1, "the training data has ", data.train.size(),
              " sets, fewer than one batch of ", training.batch_size, "; lower --batch-size");
  const auto warmup_steps =
      static_cast<int64_t>(std::round(training.warmup_epochs * steps_per_epoch));
  const CosineSchedule schedule(training.learning_rate, training.min_learning_rate, warmup_steps,
                                training.epochs * steps_per_epoch);
  MetricsLog metrics(out_dir + "/metrics.jsonl");
  metrics.truncate_from(progress.epoch);
  ProgressBar bar(training.epochs, steps_per_epoch, "set");
  InterruptGuard interrupt_guard;
  const auto session_start = Clock::now();
  const double elapsed_before = progress.elapsed_seconds;
  auto elapsed = [&] {
    return elapsed_before + std::chrono::duration<double>(Clock::now() - session_start).count();
  };
  auto save = [&] {
    progress.elapsed_seconds = elapsed();
    progress.rng_states = {cpu_rng_state()};
    save_checkpoint(checkpoint, config_json, *model, &optimizer, progress);
  };
  int64_t parameter_count = 0;
  for (const auto& parameter : model->parameters())
    parameter_count += parameter.numel();
  std::fprintf(stderr,
               "training %lld parameters on %lld %s sets (%lld test sets), %lld steps per epoch, "
               "%s at epoch %lld step %lld\n",
               static_cast<long long>(parameter_count), static_cast<long long>(data.train.size()),
               config.data.task.c_str(), static_cast<long long>(data.test.size()),
               static_cast<long long>(steps_per_epoch), resume_from ? "resuming" : "starting",
               static_cast<long long>(progress.epoch + 1),
               static_cast<long long>(progress.batch_in_epoch + 1));

  TrainingOutcome outcome;
  outcome.checkpoint = checkpoint;
  for (int64_t epoch = progress.epoch; epoch < training.epochs; ++epoch) {
    const auto order = epoch_order(data.train.size(), training.seed, epoch);
    model->train();
    if (progress.batch_in_epoch == 0)
      progress.epoch_started_at = elapsed();
    while (progress.batch_in_epoch < steps_per_epoch) {
      const auto batch = data.train.select(
          order.narrow(0, progress.batch_in_epoch * training.batch_size, training.batch_size));
      set_learning_rate(optimizer, schedule.at(progress.global_step));
      optimizer.zero_grad();
      auto logits = model->forward(batch.content, batch.positions, batch.mask);
      auto loss = token_loss(logits, batch.targets, training.label_smoothing, torch::kMean);
      const double loss_value = loss.item<double>();
      TORCH_CHECK(std::isfinite(loss_value), "the loss became ", loss_value, " at epoch ",
                  epoch + 1, ", step ", progress.batch_in_epoch + 1,
                  "; training stopped without "
                  "saving. ",
                  fs::exists(checkpoint) ? "The last good checkpoint is " + checkpoint + "."
                                         : std::string("No checkpoint had been written yet."),
                  " Lower --lr");
      loss.backward();
      if (training.gradient_clip > 0.0)
        torch::nn::utils::clip_grad_norm_(model->parameters(), training.gradient_clip);
      optimizer.step();
      const int64_t tokens = batch.targets.ge(0).sum().item<int64_t>();
      ++progress.global_step;
      ++progress.batch_in_epoch;
      progress.epoch_loss_sum += loss_value * static_cast<double>(tokens);
      progress.epoch_correct += correct_tokens(logits, batch.targets);
      progress.epoch_images += tokens;
      bar.update(epoch, progress.batch_in_epoch, loss_value, training.batch_size);
      const bool interrupted = InterruptGuard::received() != 0;
      const bool over_budget = training.time_budget_seconds > 0.0 &&
                               elapsed() - elapsed_before >= training.time_budget_seconds;
      if (interrupted || over_budget) {
        bar.finish_epoch();
        save();
        outcome.status = interrupted ? TrainingOutcome::Status::Interrupted
                                     : TrainingOutcome::Status::TimeBudgetReached;
        outcome.epochs_done = epoch;
        std::fprintf(
            stderr, "%s at epoch %lld step %lld; checkpoint %s written. Continue with --resume.\n",
            interrupted ? "interrupted" : "time budget reached", static_cast<long long>(epoch + 1),
            static_cast<long long>(progress.batch_in_epoch), checkpoint.c_str());
        return outcome;
      }
    }
    bar.finish_epoch();
    const double epoch_seconds = elapsed() - progress.epoch_started_at;
    const auto test = evaluate_token_sets(model, data.test, training.eval_batch_size);
    const auto tokens = static_cast<double>(std::max<int64_t>(1, progress.epoch_images));
    const nlohmann::json entry = {
        {"epoch", epoch + 1},
        {"train_loss", progress.epoch_loss_sum / tokens},
        {"train_accuracy", static_cast<double>(progress.epoch_correct) / tokens},
        {"test_loss", test.loss},
        {"test_accuracy", test.accuracy},
        {"learning_rate", schedule.at(progress.global_step - 1)},
        {"epoch_seconds", epoch_seconds},
        {"train_sets_per_second",
         static_cast<double>(steps_per_epoch * training.batch_size) / epoch_seconds},
        {"elapsed_seconds", elapsed()}};
    progress.epoch = epoch + 1;
    progress.batch_in_epoch = 0;
    progress.epoch_loss_sum = 0.0;
    progress.epoch_correct = 0;
    progress.epoch_images = 0;
    save();
    outcome.last_test_accuracy = test.accuracy;
    metrics.record_epoch(entry, training.epochs, out_dir + "/curves.png");
  }
  outcome.status = TrainingOutcome::Status::Completed;
  outcome.epochs_done = training.epochs;
  return outcome;
}

}  // namespace

nlohmann::json SetRunConfig::to_json() const {
  return {{"task", data.task},
          {"model", model.to_json()},
          {"training", training.to_json()},
          {"data", data.to_json()}};
}

SetRunConfig SetRunConfig::from_json(const nlohmann::json& json) {
  TORCH_CHECK(
      json.is_object() && describes(json) && json.contains("model") && json.contains("training"),
      "not a posenc token-set run configuration (needs \"task\", \"model\" and "
      "\"training\"): ",
      json.dump().substr(0, 200));
  SetRunConfig config;
  check_known_keys(json, config.to_json(), "token-set run configuration");
  config.model = SetTransformerOptions::from_json(json.at("model"));
  config.training = TrainingOptions::from_json(json.at("training"));
  config.data = SetTaskSource::from_json(json.value("data", nlohmann::json::object()));
  TORCH_CHECK(json.at("task") == config.data.task, "the run's task ", json.at("task").dump(),
              " differs from its data's task '", config.data.task, "'");
  return config;
}

TokenSets fit_to_model(const TokenSets& data, const SetTransformerOptions& model,
                       const std::string& name) {
  TORCH_CHECK(data.content_dim() == model.content_dim, name, ": content has ", data.content_dim(),
              " numbers per token, the model reads ", model.content_dim);
  const auto largest_target = data.targets.max().item<int64_t>();
  TORCH_CHECK(largest_target < model.classes, name, ": targets up to ", largest_target,
              " but the model predicts classes 0 to ", model.classes - 1);
  return data.with_position_shape(model.position_groups, model.position_values);
}

SetAccuracy evaluate_token_sets(SetTransformer& model, const TokenSets& data, int64_t batch_size) {
  TORCH_CHECK(batch_size >= 1, "evaluation batch size must be >= 1, got ", batch_size);
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  SetAccuracy result;
  double loss_sum = 0.0;
  for (int64_t start = 0; start < data.size(); start += batch_size) {
    const auto count = std::min(batch_size, data.size() - start);
    const auto batch = data.select(torch::arange(start, start + count, torch::kLong));
    const auto logits = model->forward(batch.content, batch.positions, batch.mask);
    loss_sum += token_loss(logits, batch.targets, 0.0, torch::kSum).item<double>();
    result.correct += correct_tokens(logits, batch.targets);
    result.tokens += batch.targets.ge(0).sum().item<int64_t>();
  }
  const auto tokens = static_cast<double>(std::max<int64_t>(1, result.tokens));
  result.accuracy = static_cast<double>(result.correct) / tokens;
  result.loss = loss_sum / tokens;
  model->train(was_training);
  return result;
}

TrainingOutcome train_token_sets(SetRunConfig config, const std::string& out_dir) {
  TORCH_CHECK(!fs::exists(checkpoint_path(out_dir)), out_dir, " already holds a checkpoint (",
              checkpoint_path(out_dir),
              "); pass --resume to continue that run, or choose another --out");
  return run_set_training(std::move(config), out_dir, std::nullopt);
}

TrainingOutcome resume_token_set_training(const std::string& out_dir,
                                          const ResumeOverrides& overrides) {
  const std::string checkpoint = checkpoint_path(out_dir);
  TORCH_CHECK(fs::exists(checkpoint), "--resume: no checkpoint at ", checkpoint,
              "; start without --resume");
  auto bytes = CheckpointBytes::read(checkpoint);
  auto config = SetRunConfig::from_json(read_checkpoint_config(bytes));
  if (overrides.epochs)
    config.training.epochs = *overrides.epochs;
  config.training.time_budget_seconds = overrides.time_budget_seconds;
  return run_set_training(std::move(config), out_dir, bytes);
}

TrainedSetModel load_trained_set_model(const std::string& checkpoint) {
  TrainedSetModel trained;
  trained.config = SetRunConfig::from_json(read_checkpoint_config(checkpoint));
  trained.model = SetTransformer(trained.config.model);
  load_model_tensors(checkpoint, *trained.model);
  trained.model->eval();
  return trained;
}

SetTransformer initial_set_model(const SetRunConfig& config) {
  torch::manual_seed(config.training.seed);
  SetTransformer model(config.model);
  model->eval();
  return model;
}

double embedding_distance_correlation(SetTransformer& model, const torch::Tensor& positions) {
  TORCH_CHECK(positions.dim() == 3, "positions must be (P, G, M), got ", positions.sizes());
  torch::NoGradGuard no_grad;
  auto embedding = model->positional_embedding(positions.unsqueeze(0)).squeeze(0);  // (P, C)
  embedding = embedding - embedding.mean(0, /*keepdim=*/true);
  return similarity_distance_correlation(cosine_similarity_matrix(embedding),
                                         positions.flatten(1).to(torch::kFloat32));
}

}  // namespace posenc
