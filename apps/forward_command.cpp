// `posenc forward`: a model's logits for images given as a tensor file, to compare posenc with
// PyTorch on exactly the same input.
#include <iostream>

#include <c10/util/Exception.h>
#include <torch/torch.h>

#include "commands.h"
#include "output_files.h"
#include "pad_to_patch_flag.h"
#include "posenc/interop/torch_save_files.h"
#include "posenc/system_info.h"
#include "posenc/train/trained_model.h"
#include "thread_count.h"

namespace posenc::cli {
namespace {

struct ForwardArguments {
  std::string checkpoint;
  std::string input;
  std::string output;
  bool force = false;
  bool pad_to_patch = false;
  int threads = 0;
};

void run_forward(const ForwardArguments& a) {
  prepare_output_file(a.output, a.force, {a.checkpoint, a.input});
  configure_threads(a.threads);
  auto trained = load_trained_model(a.checkpoint);
  const auto images = read_torch_tensor(a.input);
  const int64_t channels = trained.config.model.image_channels;
  TORCH_CHECK(images.dim() == 4 && images.size(1) == channels && images.is_floating_point(),
              a.input, " must hold a floating-point tensor (B, ", channels,
              ", H, W), as the model takes it (already normalised); got ", images.sizes(), " ",
              images.scalar_type());
  TORCH_CHECK(torch::isfinite(images).all().item<bool>(), a.input, " holds NaN or infinite values");
  prepare_image_sizes(trained.model, a.pad_to_patch, {{images.size(2), images.size(3)}});
  torch::NoGradGuard no_grad;
  const auto logits = trained.model->forward(images.to(torch::kFloat32));  // (B, classes)
  write_torch_tensor(a.output, logits);
  std::cout << "wrote logits " << logits.sizes() << " to " << a.output << "\n";
}

}  // namespace

void add_forward_command(CLI::App& app) {
  auto arguments = std::make_shared<ForwardArguments>();
  auto* c = app.add_subcommand("forward",
                               "Logits of a model for a tensor of images saved with torch.save");
  auto& a = *arguments;
  c->add_option("--checkpoint", a.checkpoint, "posenc checkpoint")->required();
  c->add_option("--input", a.input, "torch.save file of a (B, C, H, W) float tensor")->required();
  // --out as in import and export; --output is its first name, kept for existing scripts
  c->add_option("--out,--output", a.output, "where to torch.save the (B, classes) logits")
      ->required();
  c->add_flag("--force", a.force, "replace --out if it exists (never --checkpoint or --input)");
  add_pad_to_patch_flag(*c, a.pad_to_patch);
  add_threads_option(*c, a.threads, "intra-op threads (default: all available cores)");
  c->callback([arguments] { run_forward(*arguments); });
}

}  // namespace posenc::cli
