// `posenc export`: a posenc checkpoint's model as a PyTorch state dict that torch.load reads,
// under the names of its family (timm ViT/DeiT, eva.py RoPE ViT, BEiT, relpos ViT, CPVT or LFF).
#include <filesystem>
#include <fstream>
#include <iostream>

#include <torch/torch.h>

#include "commands.h"
#include "output_files.h"
#include "posenc/interop/pytorch_models.h"
#include "posenc/train/trained_model.h"

namespace posenc::cli {
namespace {

namespace fs = std::filesystem;

struct ExportArguments {
  std::string checkpoint;
  std::string out;
  std::string model_config;  // empty: beside --out
  bool no_model_config = false;
  bool force = false;
};

void run_export(const ExportArguments& a) {
  const std::string config_path = a.no_model_config       ? std::string()
                                  : a.model_config.empty() ? timm_model_config_path_beside(a.out)
                                                           : a.model_config;
  prepare_output_file(a.out, a.force, {a.checkpoint});
  if (!config_path.empty()) {
    TORCH_CHECK(fs::weakly_canonical(config_path) != fs::weakly_canonical(a.out),
                "--config and --out name the same file, ", a.out, "; the config goes beside the "
                "state dict, e.g. --config ", timm_model_config_path_beside(a.out));
    prepare_output_file(config_path, a.force, {a.checkpoint}, "--config (or --no-config)");
  }
  const auto trained = load_trained_model(a.checkpoint);
  const auto state = export_pytorch_model(*trained.model);
  auto exported = exported_model_config(trained.model->options());
  exported.config.mean = trained.config.normalization.mean;
  exported.config.std = trained.config.normalization.std;
  exported.config.class_names = trained.config.class_names;
  write_torch_state_dict(a.out, state);
  std::cout << "wrote " << state.size() << " tensors to " << a.out;
  if (!config_path.empty()) {
    std::ofstream file(config_path, std::ios::trunc);
    file << timm_model_config_json(exported.config, exported.model_args).dump(2) << "\n";
    file.flush();
    TORCH_CHECK(file.good(), "cannot write ", config_path, "; is the disk full?");
    std::cout << " and its settings (heads, input size, mean/std, class names) to "
              << config_path;
  }
  std::cout << "; in Python: model.load_state_dict(torch.load('" << a.out << "'))\n";
  if (!exported.config.architecture.empty())
    std::cout << "in timm: cfg = json.load(open('" << config_path
              << "')); timm.create_model(cfg['architecture'], **cfg['model_args'])\n";
}

}  // namespace

void add_export_command(CLI::App& app) {
  auto arguments = std::make_shared<ExportArguments>();
  auto* c = app.add_subcommand("export", "Write a checkpoint's model as a PyTorch state dict");
  auto& a = *arguments;
  c->add_option("--checkpoint", a.checkpoint, "posenc checkpoint")->required();
  c->add_option("--out", a.out, "the .pth file to write")->required();
  c->add_option("--config", a.model_config,
                "where to write timm's config.json of the model, which posenc import reads "
                "back (default: beside --out, model.pth -> model.config.json)");
  c->add_flag("--no-config", a.no_model_config, "write the state dict alone")
      ->excludes("--config");
  c->add_flag("--force", a.force,
              "replace --out and the config if they exist (never the checkpoint itself)");
  c->callback([arguments] { run_export(*arguments); });
}

}  // namespace posenc::cli
