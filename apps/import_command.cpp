// `posenc import`: a PyTorch state dict (timm ViT/DeiT, CPVT, LFF; saved with torch.save) into a
// posenc checkpoint that eval, predict, forward and export read.
#include <filesystem>
#include <fstream>
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

namespace fs = std::filesystem;

struct ImportArguments {
  std::string family;
  std::string state_dict;
  std::string out;
  std::string model_config;  // timm's config.json; empty: found beside the state dict
  bool no_model_config = false;
  int64_t heads = 0;
  std::string image_size;
  std::string table_grid;
  std::string global_pool;
  std::string conditional_after;
  std::string mean, std;
  std::string class_names;
  bool force = false;
  TestDataFlags data;
};

std::vector<double> per_channel(const std::string& text, const char* flag, int64_t channels) {
  const auto numbers = parse_number_list(text);
  TORCH_CHECK(static_cast<int64_t>(numbers.size()) == channels, flag,
              " needs one value per image channel (", channels, "), got ", numbers.size());
  return numbers;
}

// The model config to read: --config, else the one posenc export writes beside the state dict
// (model.config.json), else timm's config.json in the state dict's folder (its Hub layout).
std::string find_model_config(const ImportArguments& a) {
  if (a.no_model_config)
    return "";
  if (!a.model_config.empty())
    return a.model_config;
  const fs::path beside = timm_model_config_path_beside(a.state_dict);
  const fs::path folder_config = fs::path(a.state_dict).parent_path() / "config.json";
  for (const auto& path : {beside, folder_config})
    if (fs::is_regular_file(path))
      return path.string();
  return "";
}

// One class name per line of `path`, as many as the model has classes.
std::vector<std::string> read_class_names(const std::string& path, int64_t classes) {
  std::ifstream file(path);
  TORCH_CHECK(file.good(), "cannot read --class-names ", path);
  std::vector<std::string> names;
  for (std::string line; std::getline(file, line);) {
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    names.push_back(line);
  }
  TORCH_CHECK(static_cast<int64_t>(names.size()) == classes, "--class-names ", path, " has ",
              names.size(), " lines but the model has ", classes,
              " classes: one name per line, in the classifier's order");
  return names;
}

void run_import(const ImportArguments& a, const CLI::App& command) {
  prepare_output_file(a.out, a.force, {a.state_dict});
  const std::string config_path = find_model_config(a);
  ImportOptions options;
  if (!config_path.empty())
    options.config = read_timm_model_config(config_path);
  const TimmModelConfig& timm = options.config;
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
  const auto normalization = [&](const std::string& flag_value, const char* flag,
                                 const std::vector<double>& from_config, double fallback) {
    if (!flag_value.empty())
      return per_channel(flag_value, flag, channels);
    return from_config.empty() ? std::vector<double>(channels, fallback) : from_config;
  };
  config.normalization.mean = normalization(a.mean, "--mean", timm.mean, 0.0);
  config.normalization.std = normalization(a.std, "--std", timm.std, 1.0);
  if (a.mean.empty() && a.std.empty() && timm.mean.empty() && timm.std.empty())
    imported.notes.push_back(
        "no --mean/--std and no config with them: images are fed as their [0, 1] values, "
        "unnormalised; timm's DeiT and ImageNet models expect --mean 0.485,0.456,0.406 --std "
        "0.229,0.224,0.225, its augreg ViTs --mean 0.5,0.5,0.5 --std 0.5,0.5,0.5");
  if (!a.class_names.empty()) {
    config.class_names = read_class_names(a.class_names, config.model.classes);
  } else if (!timm.class_names.empty()) {
    TORCH_CHECK(static_cast<int64_t>(timm.class_names.size()) == config.model.classes,
                config_path, " names ", timm.class_names.size(), " classes but the model has ",
                config.model.classes);
    config.class_names = timm.class_names;
  } else {
    for (int64_t c = 0; c < config.model.classes; ++c)
      config.class_names.push_back(std::to_string(c));
  }
  save_checkpoint(a.out, config.to_json(), *imported.model, nullptr, TrainingProgress{});

  const auto& model = config.model;
  std::cout << "imported " << a.family << " from " << a.state_dict << ": dim " << model.dim
            << ", depth " << model.depth << ", heads " << model.heads << ", patch "
            << model.patch_size << ", " << model.classes << " classes, " << model.image_height
            << "x" << model.image_width << " images, encodings";
  for (const auto& spec : model.encodings)
    std::cout << " " << spec;
  std::cout << "\n";
  if (!config_path.empty())
    std::cout << "  settings from " << config_path << " (--no-config ignores it)\n";
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
  c->add_option("--from", a.family,
                "model family: timm-vit, timm-rope-vit (timm's eva.py RoPE ViTs), timm-beit "
                "(BEiT, BEiT v2), timm-relpos-vit (vit_relpos_*, vit_srelpos_*), cpvt or lff")
      ->required();
  c->add_option("state_dict", a.state_dict, "the .pth file written by torch.save")->required();
  c->add_option("--out", a.out, "the posenc checkpoint to write")->required();
  c->add_flag("--force", a.force, "replace --out if it exists (never the state dict itself)");
  c->add_option("--config", a.model_config,
                "timm's config.json of the model (heads, input size, mean/std, class names; "
                "flags win); default: STATE_DICT's .config.json (posenc export writes it) or "
                "config.json beside it (timm's Hub layout)");
  c->add_flag("--no-config", a.no_model_config, "read no config.json, even one beside the file")
      ->excludes("--config");
  c->add_option("--heads", a.heads,
                "attention heads (default: the config's, else dim / 64 as timm's ViT/DeiT, 16 "
                "for its huge and giant widths)");
  c->add_option("--image-size", a.image_size,
                "resolution to record as trained, 224 or HxW (default: the config's input_size, "
                "else timm-vit the table's, else 224); a timm-vit table is resampled to it");
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
  c->add_option("--mean", a.mean,
                "per-channel normalisation mean, e.g. 0.485,0.456,0.406 (default: the "
                "config's, else 0)");
  c->add_option("--std", a.std,
                "per-channel normalisation std, e.g. 0.229,0.224,0.225 (default: the config's, "
                "else 1)");
  c->add_option("--class-names", a.class_names,
                "a text file of class names, one per line in the classifier's order (default: "
                "the config's label_names, else 0, 1, ...)");
  add_test_data_flags(*c, arguments->data, "none; eval, attention and probe then need them");
  c->callback([arguments, c] { run_import(*arguments, *c); });
}

}  // namespace posenc::cli
