// `posenc export`: a posenc checkpoint's model as a PyTorch state dict that torch.load reads,
// under the names of its family (timm ViT/DeiT, CPVT or LFF).
#include <iostream>

#include <torch/torch.h>

#include "commands.h"
#include "output_files.h"
#include "posenc/interop/pytorch_models.h"
#include "posenc/train/trained_model.h"

namespace posenc::cli {
namespace {

struct ExportArguments {
  std::string checkpoint;
  std::string out;
  bool force = false;
};

void run_export(const ExportArguments& a) {
  prepare_output_file(a.out, a.force, {a.checkpoint});
  const auto trained = load_trained_model(a.checkpoint);
  const auto state = export_pytorch_model(*trained.model);
  write_torch_state_dict(a.out, state);
  std::cout << "wrote " << state.size() << " tensors to " << a.out
            << "; in Python: model.load_state_dict(torch.load('" << a.out << "'))\n";
}

}  // namespace

void add_export_command(CLI::App& app) {
  auto arguments = std::make_shared<ExportArguments>();
  auto* c = app.add_subcommand("export", "Write a checkpoint's model as a PyTorch state dict");
  auto& a = *arguments;
  c->add_option("--checkpoint", a.checkpoint, "posenc checkpoint")->required();
  c->add_option("--out", a.out, "the .pth file to write")->required();
  c->add_flag("--force", a.force, "replace --out if it exists (never the checkpoint itself)");
  c->callback([arguments] { run_export(*arguments); });
}

}  // namespace posenc::cli
