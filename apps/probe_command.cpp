// `posenc probe`: what a trained positional encoding learned. The cosine similarity between the
// positional signal of every grid cell and that of every other, drawn as one small map per cell
// (or one large map for --cell), and the correlation between that similarity and the cells'
// L2 distance.
#include <cmath>
#include <iomanip>
#include <iostream>

#include <torch/torch.h>

#include "commands.h"
#include "output_files.h"
#include "pad_to_patch_flag.h"
#include "posenc/analysis/encoding_similarity.h"
#include "posenc/analysis/tile_canvas.h"
#include "posenc/system_info.h"
#include "posenc/train/trained_model.h"
#include "test_data_flags.h"
#include "thread_count.h"

namespace posenc::cli {
namespace {

struct ProbeArguments {
  std::string checkpoint;
  std::string out = "probe.png";
  std::string resolution;
  std::string cell;
  int64_t images = 256;
  int64_t tile_pixels = 56;
  bool json = false;
  bool force = false;
  bool pad_to_patch = false;
  TestDataFlags data;
  int threads = 0;
};

// "R,C" -> (row, column) inside the grid
std::pair<int64_t, int64_t> parse_cell(const std::string& text, const TokenGrid& grid) {
  const auto comma = text.find(',');
  int64_t row = -1, column = -1;
  try {
    TORCH_CHECK(comma != std::string::npos, "");
    size_t used_row = 0, used_column = 0;
    row = std::stoll(text.substr(0, comma), &used_row);
    column = std::stoll(text.substr(comma + 1), &used_column);
    TORCH_CHECK(used_row == comma && used_column == text.size() - comma - 1, "");
  } catch (const std::exception&) {
    TORCH_CHECK(false, "--cell takes ROW,COLUMN such as 3,3, got '", text, "'");
  }
  TORCH_CHECK(row >= 0 && row < grid.height && column >= 0 && column < grid.width, "--cell ", row,
              ",", column, " is outside the ", grid.height, "x", grid.width,
              " grid; rows and columns count from 0");
  return {row, column};
}

void run_probe(const ProbeArguments& arguments, const CLI::App& command) {
  configure_threads(arguments.threads);
  TORCH_CHECK(arguments.tile_pixels >= 4 && arguments.tile_pixels <= 512,
              "--tile-pixels must be from 4 to 512, got ", arguments.tile_pixels);
  prepare_output_file(arguments.out, arguments.force, {arguments.checkpoint});
  auto [trained, images] =
      model_and_test_images(arguments.checkpoint, arguments.resolution, arguments.images,
                            arguments.pad_to_patch, arguments.data, command);
  auto& model = trained.model;
  const auto grid = model->grid_for(images);
  const auto signal = model->positional_signal(images);  // (h*w, dim)
  const auto similarity = centred_similarity(signal);  // (h*w, h*w)
  const double correlation = signal_distance_correlation(signal, grid.height, grid.width);
  const auto maps = similarity.view({grid.height, grid.width, grid.height, grid.width});

  if (arguments.cell.empty()) {
    TileCanvas canvas(grid.height, grid.width, arguments.tile_pixels, arguments.tile_pixels, 1);
    for (int64_t r = 0; r < grid.height; ++r) {
      for (int64_t c = 0; c < grid.width; ++c)
        canvas.draw_heat_map(r, c, maps[r][c], -1.0, 1.0);
    }
    canvas.write_png(arguments.out);
  } else {
    const auto [row, column] = parse_cell(arguments.cell, grid);
    TileCanvas canvas(1, 1, arguments.tile_pixels * grid.height,
                      arguments.tile_pixels * grid.width);
    canvas.draw_heat_map(0, 0, maps[row][column], -1.0, 1.0);
    canvas.write_png(arguments.out);
  }
  const bool additive = model->has_additive_encoding();
  const std::string source = additive
                                 ? "the sum of the additive encodings' embeddings"
                                 : c10::str("what the first PEG adds to the tokens, averaged over ",
                                            images.size(0), " test images");
  if (arguments.json) {
    std::cout << nlohmann::json{{"checkpoint", arguments.checkpoint},
                                {"image", arguments.out},
                                {"encodings", model->options().encodings},
                                {"signal", additive ? "additive" : "conditional"},
                                {"grid", {grid.height, grid.width}},
                                {"similarity_distance_correlation", correlation}}
                     .dump(1)
              << "\n";
    return;
  }
  std::cout << "wrote " << arguments.out << ": cosine similarity (-1 dark blue, +1 yellow) of the "
            << "centred positional signal of "
            << (arguments.cell.empty() ? "each cell (one small map per cell, in grid order)"
                                       : "cell " + arguments.cell)
            << " with every cell of the " << grid.height << "x" << grid.width
            << " grid; signal: " << source << "\ncorrelation between similarity and L2 distance "
            << "over all pairs of cells: ";
  if (std::isnan(correlation)) {
    std::cout << "undefined (the " << grid.height << "x" << grid.width
              << " grid has too few pairs of cells at different distances)\n";
  } else {
    std::cout << std::fixed << std::setprecision(3) << correlation
              << " (-1: similarity falls with distance; 0: unrelated)\n";
  }
}

}  // namespace

void add_probe_command(CLI::App& app) {
  auto arguments = std::make_shared<ProbeArguments>();
  auto* c = app.add_subcommand(
      "probe", "Draw how similar a trained encoding makes each grid cell to every other, as a PNG");
  c->add_option("--checkpoint", arguments->checkpoint, "checkpoint written by posenc train")
      ->required();
  c->add_option("--out", arguments->out, "PNG file to write")->capture_default_str();
  c->add_flag("--force", arguments->force, "replace --out if it exists (never the checkpoint)");
  c->add_option("--resolution", arguments->resolution,
                "probe the grid of this image size, e.g. 36 (default: the trained size)");
  c->add_option("--cell", arguments->cell, "draw one large map for the cell ROW,COLUMN");
  c->add_option("--images", arguments->images, "test images that PEG's signal is averaged over")
      ->capture_default_str();
  c->add_option("--tile-pixels", arguments->tile_pixels, "size of each cell's map in pixels")
      ->capture_default_str();
  c->add_flag("--json", arguments->json, "print the figures as JSON");
  add_threads_option(*c, arguments->threads, "intra-op threads (default: all available cores)");
  add_pad_to_patch_flag(*c, arguments->pad_to_patch);
  add_test_data_flags(*c, arguments->data);
  c->callback([arguments, c] { run_probe(*arguments, *c); });
}

}  // namespace posenc::cli
