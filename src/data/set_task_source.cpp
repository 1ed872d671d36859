#include "posenc/data/set_task_source.h"

#include <c10/util/Exception.h>

#include "core/json_keys.h"
#include "posenc/data/layout_task.h"
#include "posenc/data/nearest_neighbour_task.h"
#include "posenc/data/token_sets_jsonl.h"

namespace posenc {

TokenSets SetTaskSource::load(const std::string& split, const CoordinateRange& range) const {
  validate();
  TORCH_CHECK(split == "train" || split == "test", "unknown split '", split,
              "'; use train or test");
  if (user_data()) {
    TORCH_CHECK(range == CoordinateRange{},
                "user token sets are read as they are: a coordinate range applies only to "
                "generated tasks; write the positions you want to test into a JSONL file");
    return read_token_sets_jsonl(split == "train" ? train_jsonl : test_jsonl);
  }
  // distinct streams for the two splits
  const uint64_t stream_seed = seed * 2 + (split == "test" ? 1 : 0);
  const int64_t count = split == "train" ? train_sets : test_sets;
  if (task == "nearest-neighbour") {
    NearestNeighbourTaskOptions options;
    options.sets = count;
    options.points = points;
    options.labels = labels;
    options.seed = stream_seed;
    options.range = range;
    return make_nearest_neighbour_sets(options);
  }
  LayoutTaskOptions options;
  options.screens = count;
  options.widget_types = widget_types;
  options.seed = stream_seed;
  options.range = range;
  return make_layout_screens(options);
}

void SetTaskSource::validate() const {
  TORCH_CHECK(task == "nearest-neighbour" || task == "layout", "unknown token-set task '", task,
              "'; tasks: nearest-neighbour, layout");
  TORCH_CHECK(train_jsonl.empty() == test_jsonl.empty(),
              "user token sets need both a training and a test file (--train-jsonl and "
              "--test-jsonl)");
  TORCH_CHECK(train_sets >= 1 && test_sets >= 1,
              "need at least one training and one test set, "
              "got ",
              train_sets, " and ", test_sets);
  TORCH_CHECK(points >= 2 && labels >= 2 && widget_types >= 1,
              "need points >= 2, labels >= 2 and widget types >= 1, got ", points, ", ", labels,
              ", ", widget_types);
  // Each set's targets compare every point with every other, and a set model attends over all
  // of a set's tokens: both grow with the square of the points. 100000 points ran for hours
  // before the first line of output.
  TORCH_CHECK(points <= kMaxGeneratedPoints, "--points ", points, " is more than the ",
              kMaxGeneratedPoints,
              " points a generated set may have: generating the targets and attending over a set "
              "both take time and memory in the square of its points (a batch of 64 sets of ",
              points, " points holds ", 64 * 4 * points * points * 4 / (1 << 20),
              " MiB of attention weights per block at 4 heads)");
}

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SetTaskSource, task, train_sets, test_sets, points,
                                                labels, widget_types, seed, train_jsonl,
                                                test_jsonl)

nlohmann::json SetTaskSource::to_json() const {
  return nlohmann::json(*this);
}

SetTaskSource SetTaskSource::from_json(const nlohmann::json& json) {
  auto source = read_options_json<SetTaskSource>(json, "set data");
  source.validate();
  return source;
}

}  // namespace posenc
