#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "posenc/data/token_sets.h"

namespace posenc {

// Where a token-set run's data comes from; stored in checkpoints so eval rebuilds the same data.
//   nearest-neighbour: generated (NearestNeighbourTaskOptions), `points` points of `labels` labels
//   layout:            generated screens (LayoutTaskOptions) of `widget_types` widget types
// Either task reads user data instead when `train_jsonl` and `test_jsonl` are set
// (token_sets_jsonl.h). Generated splits are seeded from `seed`: the test sets from another
// stream than the training sets, so no test set is a training set.
struct SetTaskSource {
  // The most points a generated nearest-neighbour set may have (validate says why).
  static constexpr int64_t kMaxGeneratedPoints = 1024;

  std::string task = "nearest-neighbour";
  int64_t train_sets = 20000;
  int64_t test_sets = 2000;
  int64_t points = 16;
  int64_t labels = 8;
  int64_t widget_types = 6;
  uint64_t seed = 0;
  std::string train_jsonl;
  std::string test_jsonl;

  bool user_data() const { return !train_jsonl.empty(); }
  // split: "train" or "test". Generated sets are drawn in `range` (training uses [0, 1]); user
  // data is read as it is and `range` must be left at its default.
  TokenSets load(const std::string& split, const CoordinateRange& range = {}) const;

  void validate() const;
  nlohmann::json to_json() const;
  static SetTaskSource from_json(const nlohmann::json& json);
};

}  // namespace posenc
