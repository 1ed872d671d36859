#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "posenc/data/set_task_source.h"
#include "posenc/models/set_transformer.h"
#include "posenc/train/evaluation.h"
#include "posenc/train/run_config.h"
#include "posenc/train/trainer.h"

namespace posenc {

// Everything a token-set run needs, stored in its checkpoints. Its JSON has a "task" key, which
// tells it from an image run's (RunConfig).
struct SetRunConfig {
  // The token-set recipe: TrainingOptions' with 20 epochs, batches of 64 sets, no label
  // smoothing, and no augmentation or multi-scale resolutions (they apply to images only).
  static TrainingOptions default_training();

  SetTransformerOptions model;
  TrainingOptions training = default_training();
  SetTaskSource data;

  nlohmann::json to_json() const;
  static SetRunConfig from_json(const nlohmann::json& json);
  // Whether a stored run configuration (read_checkpoint_config) is a token-set run.
  static bool describes(const nlohmann::json& json) { return json.contains("task"); }
};

struct SetAccuracy {
  double accuracy = 0.0;  // fraction of tokens with a target predicted right
  double loss = 0.0;      // mean cross-entropy over those tokens
  int64_t correct = 0;
  int64_t tokens = 0;
  bool complete = true;  // false: stopped early by a StopRequest
};

// `data` with its positions read as the model's G x M, after checking that its content and
// targets fit the model; every error names `name` ("the test sets", a file).
TokenSets fit_to_model(const TokenSets& data, const SetTransformerOptions& model,
                       const std::string& name);

// Per-token accuracy of `model` on `data`, whose positions must have the model's G and M.
SetAccuracy evaluate_token_sets(SetTransformer& model, const TokenSets& data, int64_t batch_size,
                                const StopRequest& stop_requested = {});

// Trains a SetTransformer as `config` says, writing into `out_dir` what the image trainer writes
// (last.pt, metrics.jsonl, curves.png), with the same stops (Ctrl-C, --time-budget, a non-finite
// loss) and the same refusal of a folder that already holds a checkpoint. One process; the
// model's content_dim and classes are taken from the training data.
TrainingOutcome train_token_sets(SetRunConfig config, const std::string& out_dir);
// Continues the token-set run in `out_dir` exactly where its checkpoint stopped.
TrainingOutcome resume_token_set_training(const std::string& out_dir,
                                          const ResumeOverrides& overrides);

// A model rebuilt from a token-set checkpoint, in eval mode.
struct TrainedSetModel {
  SetRunConfig config;
  SetTransformer model{nullptr};
};
TrainedSetModel load_trained_set_model(const std::string& checkpoint);
// The model as training initialised it (the same seed draws the same weights): the "before
// training" of an encoding's similarity-distance correlation.
SetTransformer initial_set_model(const SetRunConfig& config);

// How well the model's positional embedding reflects L2 distance (LFF RQ1): the Pearson
// correlation, over pairs of `positions` (P, G, M), between the cosine similarity of their
// embeddings (centred over the P positions, as `posenc probe` does) and the L2 distance between
// the positions (all G x M values). Near -1: nearer positions look more alike; 0 for `none`.
double embedding_distance_correlation(SetTransformer& model, const torch::Tensor& positions);

}  // namespace posenc
