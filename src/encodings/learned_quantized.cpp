// `learned_quantized`: the learned-table baseline for continuous positions (Embed-2D of the LFF
// paper carried to any G x M): each of the G x M coordinates is quantised into `bins` equal bins
// over [low, high] and looks up a learned table of its own, C / (G M) channels wide; the token's
// embedding is the concatenation, so a token at (x, y) gets [table_x[bin(x)] | table_y[bin(y)]].
// Coordinates outside [low, high] take the first or last bin: a table has nothing to say beyond
// the range it was trained on, which is what the inductive claim of LFF is tested against.
// On a grid (G = 1, M = 2) the cell centres are spread over [low, high], rows then columns.
#include <cmath>
#include <vector>

#include <torch/torch.h>

#include "posenc/encoding_registry.h"

namespace posenc {
namespace {

class LearnedQuantizedEncodingImpl : public AdditiveEncodingImpl {
 public:
  LearnedQuantizedEncodingImpl(const EncodingOptions& options, const EncodingContext& context)
      : AdditiveEncodingImpl(options, context),
        groups_(options.integer("G")),
        values_(options.integer("M")),
        bins_(options.integer("bins")),
        low_(options.number("low")),
        high_(options.number("high")) {
    TORCH_CHECK(groups_ >= 1 && values_ >= 1,
                "learned_quantized G (position groups) and M (values per group) must be >= 1, got "
                "G = ",
                groups_, ", M = ", values_);
    const int64_t coordinates = groups_ * values_;
    TORCH_CHECK(dim() % coordinates == 0,
                "learned_quantized gives each of the G x M = ", coordinates,
                " coordinates an equal share of the channels: C must be divisible "
                "by ",
                coordinates, ", got C = ", dim());
    TORCH_CHECK(bins_ >= 1, "learned_quantized bins must be >= 1, got ", bins_);
    TORCH_CHECK(std::isfinite(low_) && std::isfinite(high_) && low_ < high_,
                "learned_quantized needs finite low < high (the coordinate range the bins cover), "
                "got low = ",
                low_, ", high = ", high_);
    const double init_std = options.number("init_std");
    TORCH_CHECK(init_std >= 0.0, "learned_quantized init_std must be >= 0, got ", init_std);
    // tables: (G*M, bins, C/(G*M))
    tables_ = register_parameter(
        "tables", torch::randn({coordinates, bins_, dim() / coordinates}) * init_std);
  }

  bool accepts_positions() const override { return true; }

 protected:
  torch::Tensor compute_embedding(const TokenLayout& layout, const torch::TensorOptions&) override {
    torch::Tensor coordinates;  // (B', P, G*M)
    const auto options = tables_.options();
    if (layout.is_grid()) {
      TORCH_CHECK(groups_ == 1 && values_ == 2, "learned_quantized with G = ", groups_,
                  ", M = ", values_, " cannot encode a 2-D token grid (that needs G = 1, M = 2)");
      const auto& grid = layout.grid();
      auto rows = (torch::arange(grid.height, options) + 0.5) / static_cast<double>(grid.height);
      auto columns = (torch::arange(grid.width, options) + 0.5) / static_cast<double>(grid.width);
      auto mesh = torch::meshgrid({rows, columns}, "ij");
      coordinates =
          low_ +
          (high_ - low_) * torch::stack({mesh[0].reshape(-1), mesh[1].reshape(-1)}, 1).unsqueeze(0);
    } else {
      check_position_shape(layout, groups_, values_);
      coordinates = layout.positions().to(options).flatten(2);
    }
    // bin of each coordinate, clamped to the table: (B', P, G*M) int64
    auto bins = ((coordinates - low_) * (static_cast<double>(bins_) / (high_ - low_)))
                    .floor()
                    .clamp(0, static_cast<double>(bins_ - 1))
                    .to(torch::kLong);
    std::vector<torch::Tensor> parts;
    for (int64_t i = 0; i < tables_.size(0); ++i)
      parts.push_back(tables_[i].index({bins.select(2, i)}));  // (B', P, C/(G*M))
    return with_zero_prefix(torch::cat(parts, -1), layout.prefix_tokens());
  }

 private:
  int64_t groups_;
  int64_t values_;
  int64_t bins_;
  double low_;
  double high_;
  torch::Tensor tables_;
};

}  // namespace

EncodingDefinition learned_quantized_definition() {
  return define_encoding<LearnedQuantizedEncodingImpl>(
      "learned_quantized",
      "Learned tables over quantised coordinates (Embed-2D for any G x M); positions (B, N, G, "
      "M), clamped to [low, high].",
      {{"G", OptionType::Integer, 1, "position groups (grids: 1)"},
       {"M", OptionType::Integer, 2, "values per group (grids: 2, row and column)"},
       {"bins", OptionType::Integer, 32, "bins per coordinate over [low, high]"},
       {"low", OptionType::Number, 0.0, "lowest coordinate the bins cover"},
       {"high", OptionType::Number, 1.0, "highest coordinate the bins cover"},
       {"init_std", OptionType::Number, 0.02, "standard deviation of the initial tables"}});
}

}  // namespace posenc
