#pragma once

#include <cstdint>

#include "posenc/data/token_sets.h"

namespace posenc {

// The layout-relation task (LFF RQ4: grouping a bounding box's coordinates). Each set is a
// synthetic screen of non-overlapping widget boxes (x1, y1, x2, y2): rows of bands of random
// heights, each holding widgets of random widths and heights, apart by random gaps and placed at
// random heights within their band. Content: the widget's type, one-hot. Every widget predicts
// the type of the widget immediately to its right in the same row, or "none" (class
// `widget_types`) when it is the last of its row. The answer depends on edges and rows, not on the
// distance between box centres: the nearest centre is often in the next row.
struct LayoutTaskOptions {
  int64_t screens = 20000;
  int64_t widget_types = 6;
  int64_t max_rows = 5;     // each screen has 2 .. max_rows rows
  int64_t max_per_row = 4;  // each row has 1 .. max_per_row widgets
  uint64_t seed = 0;
  // Coordinates are drawn on a unit screen and mapped to [low, high] (see NearestNeighbourTask).
  CoordinateRange range;

  void validate() const;
};

// content (S, K, widget_types) one-hot; positions (S, K, 2, 2): the top-left (x1, y1) and
// bottom-right (x2, y2) corners; targets (S, K) in [0, widget_types]; K = max_rows x max_per_row,
// padded; widgets in random order within a screen.
TokenSets make_layout_screens(const LayoutTaskOptions& options);

}  // namespace posenc
