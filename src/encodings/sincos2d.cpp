// `sincos2d`: fixed 2-D sinusoids as in MAE: the first half of the channels encodes the patch row,
// the second half the patch column, each as [sin | cos] of the integer index at geometrically
// spaced frequencies. Defined for any grid, so it needs no resampling. Prefix tokens get no
// encoding (MAE gives the class token a zero embedding).
#include <torch/torch.h>

#include "encodings/sinusoid.h"
#include "posenc/encoding_registry.h"

namespace posenc {
namespace {

class SinCos2dEncodingImpl : public AdditiveEncodingImpl {
 public:
  SinCos2dEncodingImpl(const EncodingOptions& options, const EncodingContext& context)
      : AdditiveEncodingImpl(options, context), temperature_(options.number("temperature")) {
    TORCH_CHECK(dim() % 4 == 0,
                "sincos2d splits the channels into 4 equal parts (sin and cos of rows and "
                "columns): C must be divisible by 4, got C = ",
                dim());
    TORCH_CHECK(temperature_ > 1.0, "sincos2d temperature must be > 1, got ", temperature_);
  }
  bool accepts_positions() const override { return true; }

 protected:
  torch::Tensor compute_embedding(const TokenLayout& layout,
                                  const torch::TensorOptions& options) override {
    torch::Tensor rows, columns;  // (B', P) each
    if (layout.is_grid()) {
      const auto& grid = layout.grid();
      auto row_index = torch::arange(grid.height, options).unsqueeze(1).expand({-1, grid.width});
      auto column_index = torch::arange(grid.width, options).unsqueeze(0).expand({grid.height, -1});
      rows = row_index.reshape({1, -1});
      columns = column_index.reshape({1, -1});
    } else {
      check_position_shape(layout, 1, 2);
      // positions (B, P, 1, 2) hold (row, column)
      auto positions = layout.positions().to(options);
      rows = positions.select(3, 0).select(2, 0);
      columns = positions.select(3, 1).select(2, 0);
    }
    // PE: (B', P, C) = [rows: C/2 | columns: C/2]
    auto pe = torch::cat(
        {sinusoid(rows, dim() / 2, temperature_), sinusoid(columns, dim() / 2, temperature_)}, -1);
    return with_zero_prefix(pe, layout.prefix_tokens());
  }

 private:
  double temperature_;
};

}  // namespace

EncodingDefinition sincos2d_definition() {
  return define_encoding<SinCos2dEncodingImpl>(
      "sincos2d",
      "Fixed 2-D sinusoids (MAE): half the channels for rows, half for columns; positions "
      "(B, N, 1, 2) as (row, column).",
      {{"temperature", OptionType::Number, 10000.0,
        "base of the geometric frequency progression w_k = temperature^(-4k/C)"}});
}

}  // namespace posenc
