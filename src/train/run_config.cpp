#include "posenc/train/run_config.h"

#include <c10/util/Exception.h>

#include "core/json_keys.h"

namespace posenc {

bool TrainingOptions::fit_default_warmup_to_run() {
  if (warmup_epochs < static_cast<double>(epochs) || epochs < 1)
    return false;
  warmup_epochs = 0.1 * static_cast<double>(epochs);
  return true;
}

void TrainingOptions::validate() const {
  TORCH_CHECK(epochs >= 1, "epochs must be >= 1, got ", epochs);
  TORCH_CHECK(batch_size >= 1 && eval_batch_size >= 1, "batch sizes must be >= 1, got ", batch_size,
              " and ", eval_batch_size);
  TORCH_CHECK(learning_rate > 0.0 && min_learning_rate >= 0.0 && min_learning_rate <= learning_rate,
              "need 0 <= min learning rate <= learning rate and learning rate > 0, got ",
              min_learning_rate, " and ", learning_rate);
  TORCH_CHECK(warmup_epochs >= 0.0, "the warm-up must be 0 or more epochs, got ", warmup_epochs,
              "; --warmup-epochs 0 turns it off");
  TORCH_CHECK(warmup_epochs < epochs, "the warm-up (", warmup_epochs,
              " epochs) must be shorter than the run (", epochs,
              " epochs); set --warmup-epochs to a fraction such as ", 0.1 * epochs);
  TORCH_CHECK(weight_decay >= 0.0, "weight decay must be >= 0, got ", weight_decay);
  TORCH_CHECK(label_smoothing >= 0.0 && label_smoothing < 1.0,
              "label smoothing must be in [0, 1), got ", label_smoothing);
  TORCH_CHECK(gradient_clip >= 0.0, "gradient clip must be >= 0 (0 disables it), got ",
              gradient_clip);
  TORCH_CHECK(time_budget_seconds >= 0.0, "time budget must be >= 0, got ", time_budget_seconds);
  for (int64_t resolution : train_resolutions) {
    TORCH_CHECK(resolution >= 1, "training resolutions must be positive, got ", resolution);
  }
  TORCH_CHECK(native_sizes.empty() ||
                  (native_sizes.size() == 2 && native_sizes[0] >= 1 &&
                   native_sizes[0] <= native_sizes[1]),
              "native sizes are MIN:MAX in pixels with 1 <= MIN <= MAX, got ",
              c10::ArrayRef<int64_t>(native_sizes));
  TORCH_CHECK(native_sizes.empty() || train_resolutions.empty(), "native sizes (one size per "
              "image) and training resolutions (one size per batch) are two ways of varying the "
              "size: choose one");
  augmentation.validate();
}

// every field but the nested augmentation, which reads and checks its own keys
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(TrainingOptions, epochs, batch_size, learning_rate,
                                                min_learning_rate, warmup_epochs, weight_decay,
                                                label_smoothing, gradient_clip, seed,
                                                train_resolutions, native_sizes,
                                                eval_batch_size, time_budget_seconds)

nlohmann::json TrainingOptions::to_json() const {
  nlohmann::json json(*this);
  json["augmentation"] = augmentation.to_json();
  return json;
}

TrainingOptions TrainingOptions::from_json(const nlohmann::json& json) {
  auto options = read_options_json<TrainingOptions>(json, "training");
  if (json.contains("augmentation"))
    options.augmentation = AugmentationOptions::from_json(json.at("augmentation"));
  options.validate();
  return options;
}

nlohmann::json RunConfig::to_json() const {
  return {{"model", model.to_json()},
          {"training", training.to_json()},
          {"data", data.to_json()},
          {"normalization", {{"mean", normalization.mean}, {"std", normalization.std}}},
          {"class_names", class_names}};
}

RunConfig RunConfig::from_json(const nlohmann::json& json) {
  TORCH_CHECK(json.is_object() && json.contains("model") && json.contains("training"),
              "not a posenc run configuration (needs \"model\" and \"training\"): ",
              json.dump().substr(0, 200));
  TORCH_CHECK(!json.contains("task"), "this is a token-set run (task '",
              json["task"].is_string() ? json["task"].get<std::string>() : json["task"].dump(),
              "'), not an image classifier: posenc eval and posenc train --resume read it, the "
              "image commands (predict, attention, probe, export) cannot");
  RunConfig config;
  config.model = VisionTransformerOptions::from_json(json.at("model"));
  config.training = TrainingOptions::from_json(json.at("training"));
  check_known_keys(json, config.to_json(), "run configuration");
  config.data = DataSource::from_json(json.value("data", nlohmann::json::object()));
  if (json.contains("normalization")) {
    config.normalization.mean = json["normalization"].at("mean").get<std::vector<double>>();
    config.normalization.std = json["normalization"].at("std").get<std::vector<double>>();
  }
  config.class_names = json.value("class_names", std::vector<std::string>{});
  return config;
}

}  // namespace posenc
