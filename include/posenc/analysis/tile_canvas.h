#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

namespace posenc {

// A white RGB picture of rows x columns equal tiles, for figures such as attention maps per block
// or similarity maps per grid cell; written as PNG.
class TileCanvas {
 public:
  // Tiles of tile_height x tile_width pixels with `gap` white pixels between them.
  TileCanvas(int64_t rows, int64_t columns, int64_t tile_height, int64_t tile_width,
             int64_t gap = 2);

  // map: (h, w); scaled to the tile without smoothing (one block of pixels per cell) and coloured
  // with the viridis scale from `low` (dark blue) to `high` (yellow); values outside are clamped.
  void draw_heat_map(int64_t row, int64_t column, const torch::Tensor& map, double low,
                     double high);
  // image: (C, h, w) with C = 1 or 3 and values in [0, 1] (clamped), scaled like a heat map.
  void draw_image(int64_t row, int64_t column, const torch::Tensor& image);

  int64_t height() const { return height_; }
  int64_t width() const { return width_; }
  // The RGB value of one pixel, for tests.
  std::vector<uint8_t> pixel(int64_t y, int64_t x) const;
  // Throws naming the path when it cannot be written.
  void write_png(const std::string& path) const;

 private:
  // rgb: (3, h, w) uint8 -> drawn into tile (row, column)
  void draw_rgb(int64_t row, int64_t column, const torch::Tensor& rgb);

  int64_t rows_, columns_, tile_height_, tile_width_, gap_;
  int64_t height_, width_;
  std::vector<uint8_t> pixels_;  // height_ x width_ x 3, row-major
};

}  // namespace posenc
