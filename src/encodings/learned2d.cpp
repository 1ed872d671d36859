// `learned2d`: Embed-2D of the LFF paper: a learned table of row embeddings and one of column
// embeddings, each C/2 wide; the token at (i, j) gets [row[i] | column[j]]. Prefix tokens get no
// encoding.
// Grids other than the trained one, policy `resize`:
//   interpolate (default): each table is resampled to the new length by linear interpolation of
//     cell centres, so a 2x larger grid sees the same embeddings stretched, like learned1d.
//   index: tables are indexed from row/column 0 as in DETR; a smaller grid uses the first rows,
//     a grid larger than the trained one is an error.
#include <torch/torch.h>

#include "posenc/encoding_registry.h"
#include "posenc/grid_table_resampling.h"

namespace posenc {
namespace {

class Learned2dEncodingImpl : public AdditiveEncodingImpl {
 public:
  Learned2dEncodingImpl(const EncodingOptions& options, const EncodingContext& context)
      : AdditiveEncodingImpl(options, context),
        interpolate_(options.choice("resize") == "interpolate") {
    TORCH_CHECK(dim() % 2 == 0,
                "learned2d splits the channels into row and column halves: C must be even, got "
                "C = ",
                dim());
    const double init_std = options.number("init_std");
    TORCH_CHECK(init_std >= 0.0, "learned2d init_std must be >= 0, got ", init_std);
    const auto& grid = context.trained_grid;
    row_embed_ = register_parameter("row_embed", torch::randn({grid.height, dim() / 2}) * init_std);
    col_embed_ = register_parameter("col_embed", torch::randn({grid.width, dim() / 2}) * init_std);
  }

 protected:
  torch::Tensor compute_embedding(const TokenLayout& layout, const torch::TensorOptions&) override {
    const auto& grid = layout.grid();
    auto rows = axis_table(row_embed_, grid.height, "rows");       // (H, C/2)
    auto columns = axis_table(col_embed_, grid.width, "columns");  // (W, C/2)
    // (H, W, C) = [rows broadcast over columns | columns broadcast over rows]
    auto pe = torch::cat({rows.unsqueeze(1).expand({-1, grid.width, -1}),
                          columns.unsqueeze(0).expand({grid.height, -1, -1})},
                         -1);
    return with_zero_prefix(pe.reshape({1, grid.grid_tokens(), dim()}), grid.prefix_tokens);
  }

 private:
  torch::Tensor axis_table(const torch::Tensor& table, int64_t length, const char* axis) const {
    if (interpolate_)
      return resample_axis_table(table, length);
    TORCH_CHECK(length <= table.size(0), "learned2d with resize=index has ", table.size(0), " ",
                axis, " but the grid has ", length,
                "; use resize=interpolate or build the encoding for a larger trained grid");
    return table.narrow(0, 0, length);
  }

  bool interpolate_;
  torch::Tensor row_embed_;
  torch::Tensor col_embed_;
};

}  // namespace

EncodingDefinition learned2d_definition() {
  return define_encoding<Learned2dEncodingImpl>(
      "learned2d",
      "Learned row and column tables, concatenated (Embed-2D); resampled or indexed at other "
      "grids.",
      {{"init_std", OptionType::Number, 0.02, "standard deviation of the initial tables"},
       {"resize",
        OptionType::Choice,
        "interpolate",
        "grids other than the trained one: interpolate the tables linearly, or index them "
        "from 0 (larger grids are then an error)",
        {"interpolate", "index"}}});
}

}  // namespace posenc
