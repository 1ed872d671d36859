#include "posenc/train/trainer.h"

#include <algorithm>

#include <filesystem>
#include <optional>

#include <c10/util/Exception.h>
#include <torch/torch.h>

#include "posenc/data/batch_loader.h"
#include "posenc/data/image_resize.h"
#include "posenc/train/checkpoint.h"
#include "posenc/train/evaluation.h"
#include "train/training_loop.h"
#include "train/training_session.h"

namespace posenc {
namespace {

namespace fs = std::filesystem;

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
  check_same_classes(data.train, data.test);
  return data;
}

// Image classification: a VisionTransformer on labelled images, cross-entropy with label
// smoothing, each rank on its shard of every global batch, multi-scale batches resized as drawn,
// native-size batches as images of their own sizes.
class ImageClassificationTask : public TrainingTask {
 public:
  ImageClassificationTask(RunConfig& config, const TrainTestData& data)
      : config_(config), data_(data) {
    torch::manual_seed(config_.training.seed);
    model_ = VisionTransformer(config_.model);
    config_.model = model_->options();  // the encodings with every option resolved
  }

  torch::nn::Module& model() override { return *model_; }
  std::pair<std::vector<torch::Tensor>, std::vector<torch::Tensor>> weight_decay_groups()
      override {
    auto groups = model_->weight_decay_groups();
    return {std::move(groups.decayed), std::move(groups.not_decayed)};
  }
  TrainingOptions& training() override { return config_.training; }
  nlohmann::json config_json() const override { return config_.to_json(); }

  int64_t begin(const Communicator& communicator) override {
    const auto& training = config_.training;
    loader_.emplace(data_.train, training.batch_size, /*shuffle=*/true, /*drop_last=*/true,
                    training.augmentation, config_.normalization, training.seed,
                    training.train_resolutions,
                    Shard{communicator.rank(), communicator.world_size()},
                    training.native_sizes.empty()
                        ? NativeSizes{}
                        : NativeSizes{training.native_sizes[0], training.native_sizes[1],
                                      config_.model.patch_size});
    return loader_->batches_per_epoch();
  }
  void start_epoch(int64_t epoch, int64_t step) override { loader_->start_epoch(epoch, step); }

  StepLoss forward_next_batch() override {
    auto batch = loader_->next();
    TORCH_INTERNAL_ASSERT(batch.has_value(), "the loader ran out of batches within an epoch");
    torch::Tensor logits;  // (B, classes)
    if (!batch->sized_images.empty()) {
      // native sizes: every image at its own size, in one padded batch
      logits = model_->forward(batch->sized_images);
    } else {
      const int64_t height =
          batch->resolution > 0 ? batch->resolution : config_.model.image_height;
      const int64_t width = batch->resolution > 0 ? batch->resolution : config_.model.image_width;
      logits = model_->forward(resize_images(batch->images, height, width));
    }
    auto loss = torch::nn::functional::cross_entropy(
        logits, batch->labels,
        torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(
            config_.training.label_smoothing));
    const int64_t count = batch->labels.size(0);
    StepLoss step{loss, loss.item<double>() * static_cast<double>(count),
                  logits.argmax(1).eq(batch->labels).sum().item<int64_t>(), count};
    if (!batch->sized_images.empty()) {
      // each image's tokens, and the batch padded to its longest image
      const int64_t patch = config_.model.patch_size, prefix = config_.model.prefix_tokens();
      int64_t longest = 0;
      for (const auto& image : batch->sized_images) {
        const int64_t own = (image.size(1) / patch) * (image.size(2) / patch);
        step.tokens += static_cast<double>(prefix + own);
        longest = std::max(longest, own);
      }
      step.padded_tokens = static_cast<double>(count * (prefix + longest));
    }
    return step;
  }

  TaskEvaluation evaluate(Communicator& communicator,
                          const StopRequest& stop_requested) override {
    const auto test = evaluate_across_ranks(
        model_, data_.test, config_.normalization, config_.model.image_height,
        config_.model.image_width, config_.training.eval_batch_size, communicator,
        stop_requested);
    return {test.loss, test.accuracy, test.complete};
  }

  std::string samples_name() const override { return "images"; }
  std::string samples_unit() const override { return "img"; }
  // " on 96 images of 3 classes", and what loading changed in them (image folders)
  std::string describe_data() const override {
    std::string text = c10::str(" on ", data_.train.size(), " images of ", data_.train.classes(),
                                " classes");
    if (!data_.train.changes.empty())
      text += " (train: " + data_.train.changes + ")";
    if (!data_.test.changes.empty())
      text += " (test: " + data_.test.changes + ")";
    return text;
  }

 private:
  RunConfig& config_;
  const TrainTestData& data_;
  VisionTransformer model_{nullptr};
  std::optional<BatchLoader> loader_;
};

// The run shared by new and resumed runs, and by every rank of a data-parallel run (rank 0 alone
// writes the checkpoint, metrics, plot and progress).
TrainingOutcome run_image_training(RunStart start, const std::string& out_dir,
                                   Communicator& communicator) {
  const bool leader = communicator.is_leader();
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
  ImageClassificationTask task(config, *data);
  return run_training_loop(task, {start.resume, &start.checkpoint, out_dir}, communicator);
}

}  // namespace

TrainingOutcome train(RunConfig config, const std::string& out_dir, Communicator& communicator) {
  TORCH_CHECK(communicator.is_leader(), "train() is rank 0's call; rank ", communicator.rank(),
              " calls join_training()");
  TORCH_CHECK(!fs::exists(checkpoint_path(out_dir)), out_dir, " already holds a checkpoint (",
              checkpoint_path(out_dir),
              "); pass --resume to continue that run, or choose another --out");
  return run_image_training({std::move(config), /*resume=*/false, {}}, out_dir, communicator);
}

TrainingOutcome train(RunConfig config, const std::string& out_dir) {
  Communicator one_process;
  return train(std::move(config), out_dir, one_process);
}

void ResumeOverrides::apply(TrainingOptions& training, const TrainingProgress& progress) const {
  if (epochs) {
    const int64_t begun = progress.epoch + (progress.batch_in_epoch > 0 ? 1 : 0);
    TORCH_CHECK(*epochs >= begun, "--epochs ", *epochs, " is fewer than the ", begun,
                " epochs this run has already ", progress.batch_in_epoch > 0 ? "begun" : "trained",
                "; give --epochs ", begun, " or more to train it longer");
    training.epochs = *epochs;
  }
  training.time_budget_seconds = time_budget_seconds;
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
  overrides.apply(start.config.training, read_training_progress(start.checkpoint));
  return run_image_training(std::move(start), out_dir, communicator);
}

TrainingOutcome resume_training(const std::string& out_dir, const ResumeOverrides& overrides) {
  Communicator one_process;
  return resume_training(out_dir, overrides, one_process);
}

TrainingOutcome join_training(Communicator& communicator) {
  TORCH_CHECK(!communicator.is_leader(),
              "join_training() is for ranks other than 0; rank 0 calls train() or "
              "resume_training()");
  return run_image_training({}, /*out_dir=*/"", communicator);
}

}  // namespace posenc
