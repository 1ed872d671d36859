#include "posenc/data/layout_task.h"

#include <algorithm>
#include <vector>

#include <c10/util/Exception.h>
#include <torch/torch.h>

#include "data/seeded_random.h"

namespace posenc {
namespace {

struct Widget {
  double x1, y1, x2, y2;
  int64_t type;
  int64_t right_type;  // the class to predict
};

// Splits [0, 1] into `count` pieces separated (and framed) by gaps, with random proportions:
// returns the (start, end) of each piece.
std::vector<std::pair<double, double>> random_pieces(SeededRandom& random, int64_t count,
                                                     double min_piece, double max_piece,
                                                     double min_gap, double max_gap) {
  std::vector<double> gaps, pieces;
  double total = 0.0;
  for (int64_t i = 0; i <= count; ++i) {
    gaps.push_back(random.uniform(min_gap, max_gap));
    total += gaps.back();
  }
  for (int64_t i = 0; i < count; ++i) {
    pieces.push_back(random.uniform(min_piece, max_piece));
    total += pieces.back();
  }
  std::vector<std::pair<double, double>> spans;
  double at = gaps[0] / total;
  for (int64_t i = 0; i < count; ++i) {
    const double end = at + pieces[i] / total;
    spans.emplace_back(at, end);
    at = end + gaps[i + 1] / total;
  }
  return spans;
}

std::vector<Widget> random_screen(SeededRandom& random, const LayoutTaskOptions& options) {
  std::vector<Widget> widgets;
  const int64_t rows = 2 + random.below(options.max_rows - 1);
  for (const auto& [top, bottom] : random_pieces(random, rows, 1.0, 2.0, 0.1, 0.4)) {
    const int64_t count = 1 + random.below(options.max_per_row);
    // widths vary 6-fold, so a wide neighbour's centre can be farther than the next row's
    const auto columns = random_pieces(random, count, 0.5, 3.0, 0.15, 0.6);
    for (size_t c = 0; c < columns.size(); ++c) {
      const double height = (bottom - top) * random.uniform(0.4, 1.0);
      const double y1 = top + (bottom - top - height) * random.uniform();
      widgets.push_back({columns[c].first, y1, columns[c].second, y1 + height,
                         random.below(options.widget_types), options.widget_types});
      if (c > 0)
        widgets[widgets.size() - 2].right_type = widgets.back().type;
    }
  }
  // random order: a widget's index says nothing about where it is
  for (size_t i = widgets.size(); i > 1; --i)
    std::swap(widgets[i - 1], widgets[static_cast<size_t>(random.below(static_cast<int64_t>(i)))]);
  return widgets;
}

}  // namespace

void LayoutTaskOptions::validate() const {
  TORCH_CHECK(screens >= 1, "layout: need at least 1 screen, got ", screens);
  TORCH_CHECK(widget_types >= 1, "layout: need at least 1 widget type, got ", widget_types);
  TORCH_CHECK(max_rows >= 2 && max_per_row >= 2,
              "layout: screens need up to at least 2 rows of up to at least 2 widgets, got "
              "max_rows = ",
              max_rows, ", max_per_row = ", max_per_row);
  TORCH_CHECK(range.low < range.high, "layout: empty coordinate range ", range.describe());
}

TokenSets make_layout_screens(const LayoutTaskOptions& options) {
  options.validate();
  const int64_t screens = options.screens, slots = options.max_rows * options.max_per_row;
  SeededRandom random(options.seed);
  auto types = torch::zeros({screens, slots}, torch::kLong);
  auto positions = torch::zeros({screens, slots, 2, 2}, torch::kFloat32);
  auto targets = torch::full({screens, slots}, -1, torch::kLong);
  auto mask = torch::zeros({screens, slots}, torch::kBool);
  auto type = types.accessor<int64_t, 2>();
  auto position = positions.accessor<float, 4>();
  auto target = targets.accessor<int64_t, 2>();
  auto real = mask.accessor<bool, 2>();
  const double low = options.range.low, extent = options.range.high - options.range.low;
  auto map = [&](double unit) { return static_cast<float>(low + extent * unit); };
  for (int64_t s = 0; s < screens; ++s) {
    const auto widgets = random_screen(random, options);
    for (size_t w = 0; w < widgets.size(); ++w) {
      const auto& widget = widgets[w];
      const auto k = static_cast<int64_t>(w);
      position[s][k][0][0] = map(widget.x1);
      position[s][k][0][1] = map(widget.y1);
      position[s][k][1][0] = map(widget.x2);
      position[s][k][1][1] = map(widget.y2);
      type[s][k] = widget.type;
      target[s][k] = widget.right_type;
      real[s][k] = true;
    }
  }
  TokenSets data;
  // padding tokens get zero content
  data.content = torch::one_hot(types, options.widget_types).to(torch::kFloat32) *
                 mask.unsqueeze(2).to(torch::kFloat32);
  data.positions = positions;
  data.targets = targets;
  data.mask = mask;
  data.classes = options.widget_types + 1;
  return data;
}

}  // namespace posenc
