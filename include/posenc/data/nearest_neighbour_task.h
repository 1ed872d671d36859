#pragma once

#include <cstdint>

#include "posenc/data/token_sets.h"

namespace posenc {

// The nearest-neighbour task (LFF RQ1: does an encoding capture 2-D L2 distance?). Each set holds
// `points` points at uniformly random real 2-D positions, each with a random label shown as its
// content (one-hot); every point must predict the label of its nearest other point. The answer
// depends on nothing but the L2 distances between positions.
struct NearestNeighbourTaskOptions {
  int64_t sets = 20000;
  int64_t points = 16;
  int64_t labels = 8;  // content labels, also the classes predicted
  uint64_t seed = 0;
  // Positions are uniform in [low, high]^2. The same seed gives the same sets at any range, only
  // mapped affinely, so the answers are the same too.
  CoordinateRange range;

  void validate() const;
};

// content (S, K, labels) one-hot; positions (S, K, 1, 2) as (x, y); targets (S, K); no padding.
TokenSets make_nearest_neighbour_sets(const NearestNeighbourTaskOptions& options);

}  // namespace posenc
