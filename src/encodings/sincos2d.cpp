// `sincos2d`: fixed 2-D sinusoids as in MAE: the first half of the channels encodes the patch row,
// the second half the patch column, each as [sin | cos] of the integer index at geometrically
// spaced frequencies. Defined for any grid, so it needs no resampling. Prefix tokens get no
// encoding (MAE gives the class token a zero embedding).
// At explicit positions (B, N, G, M) it is the sinusoidal baseline for continuous positions: each
// of the G x M coordinates gets C / (G M) channels of its own, the channel split the grid uses for
// (row, column). `scale` sets the finest wavelength, 2 pi / scale coordinate units: points in
// [0, 1] need a scale near 100 to be told apart, patch indices need 1.
#include <cmath>
#include <vector>

#include <torch/torch.h>

#include "encodings/sinusoid.h"
#include "posenc/encoding_registry.h"

namespace posenc {
namespace {

class SinCos2dEncodingImpl : public AdditiveEncodingImpl {
 public:
  SinCos2dEncodingImpl(const EncodingOptions& options, const EncodingContext& context)
      : AdditiveEncodingImpl(options, context),
        temperature_(options.number("temperature")),
        scale_(options.number("scale")) {
    TORCH_CHECK(dim() % 4 == 0,
                "sincos2d splits the channels into 4 equal parts (sin and cos of rows and "
                "columns): C must be divisible by 4, got C = ",
                dim());
    TORCH_CHECK(temperature_ > 1.0, "sincos2d temperature must be > 1, got ", temperature_);
    TORCH_CHECK(scale_ > 0.0 && std::isfinite(scale_),
                "sincos2d scale must be a positive number, got ", scale_);
  }
  bool accepts_positions() const override { return true; }

 protected:
  torch::Tensor compute_embedding(const TokenLayout& layout,
                                  const torch::TensorOptions& options) override {
    torch::Tensor coordinates;  // (B', P, G*M): on a grid (1, H*W, 2) as (row, column)
    if (layout.is_grid()) {
      const auto& grid = layout.grid();
      auto mesh = torch::meshgrid(
          {torch::arange(grid.height, options), torch::arange(grid.width, options)}, "ij");
      coordinates = torch::stack({mesh[0].reshape(-1), mesh[1].reshape(-1)}, 1).unsqueeze(0);
    } else {
      const auto& positions = layout.positions();  // (B, P, G, M)
      coordinates = positions.to(options).flatten(2);
    }
    const int64_t count = coordinates.size(2);
    TORCH_CHECK(dim() % (2 * count) == 0, "sincos2d gives each of the ", count,
                " coordinates of a position (G x M) an equal [sin | cos] share of the channels: "
                "C must be divisible by 2 x ",
                count, ", got C = ", dim());
    // PE: (B', P, C) = [coordinate 0: C/count | coordinate 1: C/count | ...]
    auto scaled = coordinates * scale_;
    std::vector<torch::Tensor> parts;
    for (int64_t i = 0; i < count; ++i)
      parts.push_back(sinusoid(scaled.select(2, i), dim() / count, temperature_));
    return with_zero_prefix(torch::cat(parts, -1), layout.prefix_tokens());
  }

 private:
  double temperature_;
  double scale_;
};

}  // namespace

EncodingDefinition sincos2d_definition() {
  return define_encoding<SinCos2dEncodingImpl>(
      "sincos2d",
      "Fixed 2-D sinusoids (MAE): half the channels for rows, half for columns; at explicit "
      "positions (B, N, G, M) an equal share for each of the G x M coordinates.",
      {{"temperature", OptionType::Number, 10000.0,
        "base of the geometric frequency progression w_k = temperature^(-4k/C) (grids)"},
       {"scale", OptionType::Number, 1.0,
        "coordinates are multiplied by this first: the highest frequency is scale rad per "
        "coordinate unit (grids: 1 per patch)"}});
}

}  // namespace posenc
