#include "posenc/train/set_training.h"

#include <filesystem>
#include <optional>

#include <ATen/CPUGeneratorImpl.h>
#include <c10/util/Exception.h>
#include <torch/torch.h>

#include "core/json_keys.h"
#include "posenc/analysis/encoding_similarity.h"
#include "posenc/train/checkpoint.h"
#include "train/training_loop.h"
#include "train/training_session.h"

namespace posenc {
namespace {

namespace fs = std::filesystem;

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

// A token-set task: a SetTransformer predicting a class per token, cross-entropy over the tokens
// with a target. One process: a rank's share of a batch would hold another number of target
// tokens than the others', so averaging the ranks' mean gradients would not be the batch's.
class TokenSetTask : public TrainingTask {
 public:
  TokenSetTask(SetRunConfig& config, const TokenSets& train, const TokenSets& test)
      : config_(config), train_(train), test_(test) {
    torch::manual_seed(config_.training.seed);
    model_ = SetTransformer(config_.model);
    config_.model = model_->options();  // encoding specs with the G and M they were given
  }

  torch::nn::Module& model() override { return *model_; }
  std::pair<std::vector<torch::Tensor>, std::vector<torch::Tensor>> weight_decay_groups()
      override {
    return model_->weight_decay_groups();
  }
  TrainingOptions& training() override { return config_.training; }
  nlohmann::json config_json() const override { return config_.to_json(); }

  int64_t begin(const Communicator& communicator) override {
    TORCH_CHECK(communicator.world_size() == 1,
                "token-set runs train in one process (a rank's share of a batch holds another "
                "number of target tokens than the others'); run without --nproc/--world-size");
    const int64_t steps = train_.size() / config_.training.batch_size;
    TORCH_CHECK(steps >= 1, "the training data has ", train_.size(),
                " sets, fewer than one batch of ", config_.training.batch_size,
                "; lower --batch-size");
    return steps;
  }
  void start_epoch(int64_t epoch, int64_t step) override {
    order_ = epoch_order(train_.size(), config_.training.seed, epoch);
    next_step_ = step;
  }

  StepLoss forward_next_batch() override {
    const int64_t batch_size = config_.training.batch_size;
    const auto batch = train_.select(order_.narrow(0, next_step_ * batch_size, batch_size));
    ++next_step_;
    auto logits = model_->forward(batch.content, batch.positions, batch.mask);  // (B, K, classes)
    auto loss =
        token_loss(logits, batch.targets, config_.training.label_smoothing, torch::kMean);
    const int64_t tokens = batch.targets.ge(0).sum().item<int64_t>();
    return {loss, loss.item<double>() * static_cast<double>(tokens),
            correct_tokens(logits, batch.targets), tokens};
  }

  TaskEvaluation evaluate(Communicator&, const StopRequest& stop_requested) override {
    const auto test =
        evaluate_token_sets(model_, test_, config_.training.eval_batch_size, stop_requested);
    return {test.loss, test.accuracy, test.complete};
  }

  std::string samples_name() const override { return "sets"; }
  std::string samples_unit() const override { return "set"; }
  std::string describe_data() const override {
    return c10::str(" on ", train_.size(), " ", config_.data.task, " sets (", test_.size(),
                    " test sets)");
  }

 private:
  SetRunConfig& config_;
  const TokenSets& train_;
  const TokenSets& test_;
  SetTransformer model_{nullptr};
  torch::Tensor order_;  // this epoch's order of the training sets
  int64_t next_step_ = 0;
};

TrainingOutcome run_set_training(SetRunConfig config, const std::string& out_dir,
                                 const std::optional<CheckpointBytes>& resume_from) {
  config.training.validate();
  auto train = config.data.load("train");
  if (!resume_from) {  // a new run's model reads what its training data holds
    config.model.content_dim = train.content_dim();
    config.model.classes = train.classes;
  }
  const TokenSets train_sets = fit_to_model(train, config.model, "the training sets");
  const TokenSets test_sets = fit_to_model(config.data.load("test"), config.model, "the test sets");
  prepare_output_folder(out_dir);
  TokenSetTask task(config, train_sets, test_sets);
  Communicator one_process;
  return run_training_loop(task, {resume_from.has_value(), resume_from ? &*resume_from : nullptr,
                                  out_dir},
                           one_process);
}

}  // namespace

TrainingOptions SetRunConfig::default_training() {
  TrainingOptions training;
  training.epochs = 20;
  training.batch_size = 64;
  training.label_smoothing = 0.0;
  training.augmentation.crop_padding = 0;
  training.augmentation.resized_crop_min_scale = 0.0;
  training.augmentation.horizontal_flip = 0.0;
  return training;
}

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

SetAccuracy evaluate_token_sets(SetTransformer& model, const TokenSets& data, int64_t batch_size,
                                const StopRequest& stop_requested) {
  TORCH_CHECK(batch_size >= 1, "evaluation batch size must be >= 1, got ", batch_size);
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  SetAccuracy result;
  double loss_sum = 0.0;
  for (int64_t start = 0; start < data.size(); start += batch_size) {
    if (stop_requested && stop_requested()) {
      result.complete = false;
      break;
    }
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
  overrides.apply(config.training, read_training_progress(bytes));
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
  const auto embedding =
      model->positional_embedding(positions.unsqueeze(0)).squeeze(0);  // (P, C)
  return similarity_distance_correlation(centred_similarity(embedding),
                                         positions.flatten(1).to(torch::kFloat32));
}

}  // namespace posenc
