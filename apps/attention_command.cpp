// `posenc attention`: where a trained model looks. For a few test images, the attention of the
// classifying query (class token, or the mean over tokens for GAP models) in every block, drawn
// as a PNG grid, and the mean attention distance per block.
#include <iomanip>
#include <iostream>

#include <torch/torch.h>

#include "commands.h"
#include "output_files.h"
#include "pad_to_patch_flag.h"
#include "posenc/analysis/attention_maps.h"
#include "posenc/analysis/tile_canvas.h"
#include "posenc/system_info.h"
#include "posenc/train/trained_model.h"
#include "test_data_flags.h"
#include "thread_count.h"

namespace posenc::cli {
namespace {

struct AttentionArguments {
  std::string checkpoint;
  std::string out = "attention.png";
  std::string resolution;
  int64_t images = 4;
  int64_t tile_pixels = 84;
  bool json = false;
  bool force = false;
  bool pad_to_patch = false;
  TestDataFlags data;
  int threads = 0;
};

void run_attention(const AttentionArguments& arguments, const CLI::App& command) {
  configure_threads(arguments.threads);
  TORCH_CHECK(arguments.images >= 1 && arguments.images <= 64,
              "--images must be from 1 to 64 (one row each), got ", arguments.images);
  TORCH_CHECK(arguments.tile_pixels >= 8 && arguments.tile_pixels <= 512,
              "--tile-pixels must be from 8 to 512, got ", arguments.tile_pixels);
  prepare_output_file(arguments.out, arguments.force, {arguments.checkpoint});
  auto [trained, images] =
      model_and_test_images(arguments.checkpoint, arguments.resolution, arguments.images,
                            arguments.pad_to_patch, arguments.data, command);
  auto& model = trained.model;
  const int64_t height = images.size(2), width = images.size(3);
  const auto maps = classifier_attention_maps(model, images);  // (depth, B, h, w)
  const auto distances = mean_attention_distance(model, images);
  const int64_t depth = maps.size(0);

  const int64_t rows = images.size(0);  // fewer than asked if the test set is smaller
  TileCanvas canvas(rows, depth + 1, arguments.tile_pixels, arguments.tile_pixels);
  for (int64_t i = 0; i < rows; ++i) {
    const auto image = images[i];
    canvas.draw_image(i, 0, (image - image.min()) / (image.max() - image.min()).clamp_min(1e-6));
    for (int64_t b = 0; b < depth; ++b) {
      const auto map = maps[b][i];
      canvas.draw_heat_map(i, b + 1, map, 0.0, std::max(map.max().item<double>(), 1e-6));
    }
  }
  canvas.write_png(arguments.out);
  const auto grid = model->grid_for(images);
  const std::string query = model->options().head == "token"
                                ? "the class token's attention to each patch"
                                : "the attention each patch receives, averaged over all tokens";
  if (arguments.json) {
    std::cout << nlohmann::json{{"checkpoint", arguments.checkpoint},
                                {"image", arguments.out},
                                {"resolution", {height, width}},
                                {"grid", {grid.height, grid.width}},
                                {"head", model->options().head},
                                {"mean_attention_distance", distances}}
                     .dump(1)
              << "\n";
    return;
  }
  std::cout << "wrote " << arguments.out << ": " << rows << " test images (rows); the input, then "
            << query << " in blocks 1 to " << depth
            << " (columns), averaged over heads, each map scaled to its own maximum; "
            << grid.height << "x" << grid.width << " patches at " << height << "x" << width
            << "\nmean attention distance between patches, in patches, per block:";
  for (double distance : distances)
    std::cout << " " << std::fixed << std::setprecision(2) << distance;
  std::cout << "\n";
}

}  // namespace

void add_attention_command(CLI::App& app) {
  auto arguments = std::make_shared<AttentionArguments>();
  auto* c = app.add_subcommand(
      "attention", "Draw where a trained model's classifier attends, block by block, as a PNG");
  c->add_option("--checkpoint", arguments->checkpoint, "checkpoint written by posenc train")
      ->required();
  c->add_option("--out", arguments->out, "PNG file to write")->capture_default_str();
  c->add_flag("--force", arguments->force, "replace --out if it exists (never the checkpoint)");
  c->add_option("--images", arguments->images, "test images, one row each")->capture_default_str();
  c->add_option("--resolution", arguments->resolution,
                "resize the images to this size, e.g. 36 or 28x40 (default: the trained size)");
  c->add_option("--tile-pixels", arguments->tile_pixels, "size of each drawn map in pixels")
      ->capture_default_str();
  c->add_flag("--json", arguments->json, "print the figures as JSON");
  add_threads_option(*c, arguments->threads, "intra-op threads (default: all available cores)");
  add_pad_to_patch_flag(*c, arguments->pad_to_patch);
  add_test_data_flags(*c, arguments->data);
  c->callback([arguments, c] { run_attention(*arguments, *c); });
}

}  // namespace posenc::cli
