// `posenc import`: a PyTorch state dict (timm ViT/DeiT, CPVT, LFF; saved with torch.save) into a
// posenc checkpoint that eval, predict, forward and export read.
#include <iostream>
#include <tuple>

#include <c10/util/Exception.h>
#include <torch/torch.h>

#include "argument_parsing.h"
#include "commands.h"
#include "output_files.h"
#include "posenc/interop/pytorch_models.h"
#include "posenc/train/checkpoint.h"
#include "posenc/train/run_config.h"
#include "test_data_flags.h"

namespace posenc::cli {
namespace {

struct ImportArguments {
  std::string family;
  std::string state_dict;
  std::string out;
  int64_t heads = 0;
  std::string image_size;
  std::string table_grid;
  std::string global_pool;
  std::string conditional_after;
  std::string mean, std;
  bool force = false;
  TestDataFlags data;
};

std::vector<double> per_channel(const std::string& text, const char* flag, int64_t channels) {
  const auto numbers = parse_number_list(text);
  TORCH_CHECK(static_cast<int64_t>(numbers.size()) == channels, flag,
              " needs one value per image channel (", channels, "), got ", numbers.size());
  return numbers;
}

void run_import(const ImportArguments& a, const CLI::App& command) {
  prepare_output_file(a.out, a.force, {a.state_dict});
  ImportOptions options;
  options.family = a.family;
  options.heads = a.heads;
  std::tie(options.image_height, options.image_width) =
      parse_single_resolution(a.image_size, {0, 0}, "--image-size");
  std::tie(options.table_height, options.table_width) =
      parse_single_resolution(a.table_grid, {0, 0}, "--table-grid");
  options.global_pool = a.global_pool;
  if (!a.conditional_after.empty())
    options.conditional_after_blocks = parse_index_list(a.conditional_after);
  auto imported = import_pytorch_model(read_torch_state_dict(a.state_dict), options);

  RunConfig config;
  config.model = imported.model->options();
  config.data.kind = "none";  // unless given: the state dict does not say what it was trained on
  apply_test_data_flags(config, a.data, command);
  const int64_t channels = config.model.image_channels;
  // without --mean/--std, images are fed as they are after scaling to [0, 1]
  config.normalization.mean =
      a.mean.empty() ? std::vector<double>(channels, 0.0) : per_channel(a.mean, "--mean", channels);
  config.normalization.std =
      a.std.empty() ? std::vector<double>(channels, 1.0) : per_channel(a.std, "--std", channels);
  for (int64_t c = 0; c < config.model.classes; ++c)
    config.class_names.push_back(std::to_string(c));
  save_checkpoint(a.out, config.to_json(), *imported.model, nullptr, TrainingProgress{});

  const auto& model = config.model;
  std::cout << "imported " << a.family << " from " << a.state_dict << ": dim " << model.dim
            << ", depth " << model.depth << ", heads " << model.heads << ", patch "
            << model.patch_size << ", " << model.classes << " classes, " << model.image_height
            << "x" << model.image_width << " images, encodings";
  for (const auto& spec : model.encodings)
    std::cout << " " << spec;
  std::cout << "\n";
  for (const auto& note : imported.notes)
    std::cout << "  note: " << note << "\n";
  std::cout << "wrote " << a.out << "; run it with posenc forward|eval|predict --checkpoint "
            << a.out << "\n";
}

}  // namespace

void add_import_command(CLI::App& app) {
  auto arguments = std::make_shared<ImportArguments>();
  auto* c = app.add_subcommand("import",
                               "Import a PyTorch state dict (torch.save) as a posenc checkpoint");
  auto& a = *arguments;
  c->add_option("--from", a.family, "model family: timm-vit, cpvt or lff")->required();
  c->add_option("state_dict", a.state_dict, "the .pth file written by torch.save")->required();
  c->add_option("--out", a.out, "the posenc checkpoint to write")->required();
  c->add_flag("--force", a.force, "replace --out if it exists (never the state dict itself)");
  c->add_option("--heads", a.heads, "attention heads (default dim / 64, as timm's ViT/DeiT)");
  c->add_option("--image-size", a.image_size,
                "resolution to record as trained, 224 or HxW (default: timm-vit the table's, "
                "else 224); a timm-vit table is resampled to it");
  c->add_option("--table-grid", a.table_grid,
                "timm-vit: the grid of pos_embed, HxW (timm's img_size / patch_size), which a "
                "non-square table needs (default: square)");
  c->add_option("--global-pool", a.global_pool,
                "timm's global_pool, token or avg (default: token with a class token, avg "
                "without); a class-token model made with global_pool='avg', fc_norm=False needs "
                "avg")
      ->check(CLI::IsMember({"token", "avg"}));
  c->add_option("--pe-after", a.conditional_after,
                "cpvt: blocks after which pos_block.0, .1, ... run (default 0, 1, ...)");
  c->add_option("--mean", a.mean, "per-channel normalisation mean, e.g. 0.485,0.456,0.406");
  c->add_option("--std", a.std, "per-channel normalisation std, e.g. 0.229,0.224,0.225");
  add_test_data_flags(*c, arguments->data, "none; eval, attention and probe then need them");
  c->callback([arguments, c] { run_import(*arguments, *c); });
}

}  // namespace posenc::cli
