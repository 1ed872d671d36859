#include "posenc/data/nearest_neighbour_task.h"

#include <limits>
#include <vector>

#include <c10/util/Exception.h>
#include <torch/torch.h>

#include "data/seeded_random.h"

namespace posenc {

void NearestNeighbourTaskOptions::validate() const {
  TORCH_CHECK(sets >= 1, "nearest-neighbour: need at least 1 set, got ", sets);
  TORCH_CHECK(points >= 2,
              "nearest-neighbour: a set needs at least 2 points to have neighbours, "
              "got ",
              points);
  TORCH_CHECK(labels >= 2, "nearest-neighbour: need at least 2 labels, got ", labels);
  TORCH_CHECK(range.low < range.high, "nearest-neighbour: empty coordinate range ",
              range.describe());
}

TokenSets make_nearest_neighbour_sets(const NearestNeighbourTaskOptions& options) {
  options.validate();
  const int64_t sets = options.sets, points = options.points;
  SeededRandom random(options.seed);
  auto positions = torch::empty({sets, points, 1, 2}, torch::kFloat32);
  auto labels = torch::empty({sets, points}, torch::kLong);
  auto targets = torch::empty({sets, points}, torch::kLong);
  auto position = positions.accessor<float, 4>();
  auto label = labels.accessor<int64_t, 2>();
  auto target = targets.accessor<int64_t, 2>();
  const double extent = options.range.high - options.range.low;
  std::vector<double> unit(static_cast<size_t>(2 * points));
  for (int64_t s = 0; s < sets; ++s) {
    for (int64_t p = 0; p < points; ++p) {
      unit[2 * p] = random.uniform();
      unit[2 * p + 1] = random.uniform();
      label[s][p] = random.below(options.labels);
      position[s][p][0][0] = static_cast<float>(options.range.low + extent * unit[2 * p]);
      position[s][p][0][1] = static_cast<float>(options.range.low + extent * unit[2 * p + 1]);
    }
    // the answer is computed on the unit square, so every range gives the same one
    for (int64_t p = 0; p < points; ++p) {
      double nearest = std::numeric_limits<double>::infinity();
      for (int64_t q = 0; q < points; ++q) {
        const double dx = unit[2 * q] - unit[2 * p], dy = unit[2 * q + 1] - unit[2 * p + 1];
        const double squared = dx * dx + dy * dy;
        if (q != p && squared < nearest) {
          nearest = squared;
          target[s][p] = label[s][q];
        }
      }
    }
  }
  TokenSets data;
  data.content = torch::one_hot(labels, options.labels).to(torch::kFloat32);
  data.positions = positions;
  data.targets = targets;
  data.mask = torch::ones({sets, points}, torch::kBool);
  data.classes = options.labels;
  return data;
}

}  // namespace posenc
