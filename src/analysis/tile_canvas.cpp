#include "posenc/analysis/tile_canvas.h"

#include <stb_image_write.h>

#include <array>
#include <cmath>

#include <c10/util/Exception.h>
#include <torch/torch.h>

namespace posenc {
namespace {

// The viridis colour scale (perceptually uniform, readable in grey and by colour-blind readers)
// at 0, 1/4, 1/2, 3/4 and 1, interpolated linearly between.
constexpr std::array<std::array<double, 3>, 5> kViridis = {
    {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}}};

// values: (h, w) in [0, 1] -> (3, h, w) uint8
torch::Tensor viridis(const torch::Tensor& values) {
  const auto last = static_cast<double>(kViridis.size() - 1);
  const auto scaled = values.to(torch::kFloat64).clamp(0.0, 1.0) * last;
  const auto lower = scaled.floor().clamp_max(last - 1.0);
  const auto fraction = (scaled - lower).unsqueeze(0);  // (1, h, w)
  auto anchors = torch::empty({static_cast<int64_t>(kViridis.size()), 3}, torch::kFloat64);
  for (size_t i = 0; i < kViridis.size(); ++i) {
    for (size_t c = 0; c < 3; ++c)
      anchors[static_cast<int64_t>(i)][static_cast<int64_t>(c)] = kViridis[i][c];
  }
  const auto index = lower.to(torch::kInt64).flatten();
  const auto colours_at = [&](const torch::Tensor& i) {  // (h, w) anchor indices -> (3, h, w)
    return anchors.index_select(0, i).view({values.size(0), values.size(1), 3}).permute({2, 0, 1});
  };
  const auto from = colours_at(index);
  const auto to = colours_at(index + 1);
  return (from + (to - from) * fraction).round().to(torch::kUInt8);
}

}  // namespace

TileCanvas::TileCanvas(int64_t rows, int64_t columns, int64_t tile_height, int64_t tile_width,
                       int64_t gap)
    : rows_(rows),
      columns_(columns),
      tile_height_(tile_height),
      tile_width_(tile_width),
      gap_(gap),
      height_(rows * tile_height + (rows + 1) * gap),
      width_(columns * tile_width + (columns + 1) * gap) {
  TORCH_CHECK(rows >= 1 && columns >= 1 && tile_height >= 1 && tile_width >= 1 && gap >= 0,
              "a canvas needs at least one tile of at least one pixel, got ", rows, "x", columns,
              " tiles of ", tile_height, "x", tile_width);
  TORCH_CHECK(height_ <= 16384 && width_ <= 16384, "a canvas of ", height_, "x", width_,
              " pixels is too large; draw fewer or smaller tiles");
  pixels_.assign(static_cast<size_t>(height_ * width_ * 3), 255);
}

void TileCanvas::draw_rgb(int64_t row, int64_t column, const torch::Tensor& rgb) {
  TORCH_CHECK(row >= 0 && row < rows_ && column >= 0 && column < columns_, "tile (", row, ", ",
              column, ") is outside the ", rows_, "x", columns_, " canvas");
  // nearest-neighbour scaling: each cell becomes a block of pixels
  const auto rows_index =
      (torch::arange(tile_height_) * rgb.size(1) / tile_height_).to(torch::kInt64);
  const auto columns_index =
      (torch::arange(tile_width_) * rgb.size(2) / tile_width_).to(torch::kInt64);
  const auto tile = rgb.index_select(1, rows_index)
                        .index_select(2, columns_index)
                        .permute({1, 2, 0})
                        .contiguous();  // (tile_height, tile_width, 3)
  const auto* source = tile.data_ptr<uint8_t>();
  const int64_t top = gap_ + row * (tile_height_ + gap_);
  const int64_t left = gap_ + column * (tile_width_ + gap_);
  for (int64_t y = 0; y < tile_height_; ++y) {
    std::copy_n(source + y * tile_width_ * 3, tile_width_ * 3,
                pixels_.begin() + ((top + y) * width_ + left) * 3);
  }
}

void TileCanvas::draw_heat_map(int64_t row, int64_t column, const torch::Tensor& map, double low,
                               double high) {
  TORCH_CHECK(map.dim() == 2 && map.numel() > 0,
              "a heat map must be a non-empty (h, w) tensor, got ", map.sizes());
  TORCH_CHECK(std::isfinite(low) && std::isfinite(high) && high > low,
              "a heat map's range must be finite and increasing, got [", low, ", ", high, "]");
  draw_rgb(row, column, viridis((map.detach().cpu() - low) / (high - low)));
}

void TileCanvas::draw_image(int64_t row, int64_t column, const torch::Tensor& image) {
  TORCH_CHECK(image.dim() == 3 && (image.size(0) == 1 || image.size(0) == 3) && image.numel() > 0,
              "an image must be (1 or 3, h, w), got ", image.sizes());
  const auto bytes = (image.detach().cpu().to(torch::kFloat32).clamp(0.0, 1.0) * 255.0)
                         .round()
                         .to(torch::kUInt8)
                         .expand({3, image.size(1), image.size(2)});
  draw_rgb(row, column, bytes);
}

std::vector<uint8_t> TileCanvas::pixel(int64_t y, int64_t x) const {
  TORCH_CHECK(y >= 0 && y < height_ && x >= 0 && x < width_, "pixel (", y, ", ", x,
              ") is outside the canvas");
  const auto offset = static_cast<size_t>((y * width_ + x) * 3);
  return {pixels_[offset], pixels_[offset + 1], pixels_[offset + 2]};
}

void TileCanvas::write_png(const std::string& path) const {
  const int written =
      stbi_write_png(path.c_str(), static_cast<int>(width_), static_cast<int>(height_), 3,
                     pixels_.data(), static_cast<int>(width_ * 3));
  TORCH_CHECK(written != 0, "cannot write the image ", path,
              "; check that its folder exists and is writable");
}

}  // namespace posenc
