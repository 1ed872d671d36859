// `posenc predict`: the top-k classes of a trained model for image files.
#include <iomanip>
#include <iostream>

#include <torch/torch.h>

#include "argument_parsing.h"
#include "commands.h"
#include "pad_to_patch_flag.h"
#include "posenc/data/image_folder.h"
#include "posenc/data/image_resize.h"
#include "posenc/system_info.h"
#include "posenc/train/trained_model.h"
#include "thread_count.h"

namespace posenc::cli {
namespace {

struct PredictArguments {
  std::string checkpoint;
  std::vector<std::string> images;
  int64_t top_k = 3;
  std::string resolution;
  bool pad_to_patch = false;
  int threads = 0;
};

void run_predict(const PredictArguments& arguments) {
  TORCH_CHECK(arguments.top_k >= 1, "--top-k must be >= 1, got ", arguments.top_k);
  configure_threads(arguments.threads);
  auto trained = load_trained_model(arguments.checkpoint);
  const auto& config = trained.config;
  const int64_t k = std::min<int64_t>(arguments.top_k, config.model.classes);
  const auto [height, width] = parse_single_resolution(
      arguments.resolution, {config.model.image_height, config.model.image_width},
      "--resolution");
  prepare_image_sizes(trained.model, arguments.pad_to_patch, {{height, width}});
  const auto mean = torch::tensor(config.normalization.mean, torch::kFloat32).view({-1, 1, 1});
  const auto std = torch::tensor(config.normalization.std, torch::kFloat32).view({-1, 1, 1});
  torch::NoGradGuard no_grad;
  for (const auto& path : arguments.images) {
    // (C, H, W) uint8 -> normalised (1, C, H, W) at the model's input size
    auto image = read_image_file(path, config.model.image_channels).to(torch::kFloat32) / 255.0;
    auto input = resize_images(((image - mean) / std).unsqueeze(0), height, width);
    auto probabilities = torch::softmax(trained.model->forward(input), 1).squeeze(0);
    auto [values, indices] = probabilities.topk(k);
    std::cout << path << "\n";
    for (int64_t i = 0; i < k; ++i) {
      const auto label = indices[i].item<int64_t>();
      const std::string name = label < static_cast<int64_t>(config.class_names.size())
                                   ? config.class_names[label]
                                   : std::to_string(label);
      std::cout << "  " << std::fixed << std::setprecision(1) << std::setw(5)
                << 100.0 * values[i].item<double>() << "%  " << name << "\n";
    }
  }
}

}  // namespace

void add_predict_command(CLI::App& app) {
  auto arguments = std::make_shared<PredictArguments>();
  auto* c = app.add_subcommand("predict", "Top-k classes of a checkpoint for image files");
  c->add_option("--checkpoint", arguments->checkpoint, "checkpoint written by posenc train")
      ->required();
  c->add_option("images", arguments->images, "PNG/JPEG/BMP files")->required();
  c->add_option("--top-k", arguments->top_k, "classes to show")->capture_default_str();
  c->add_option("--resolution", arguments->resolution,
                "resize images to this size, e.g. 36 or 28x40 (default: the trained size)");
  add_pad_to_patch_flag(*c, arguments->pad_to_patch);
  add_threads_option(*c, arguments->threads, "intra-op threads (default: all available cores)");
  c->callback([arguments] { run_predict(*arguments); });
}

}  // namespace posenc::cli
