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
  bool native_size = false;
  int threads = 0;
};

void print_top_k(const std::string& path, const torch::Tensor& probabilities, int64_t k,
                 const std::vector<std::string>& class_names) {
  auto [values, indices] = probabilities.topk(k);
  std::cout << path << "\n";
  for (int64_t i = 0; i < k; ++i) {
    const auto label = indices[i].item<int64_t>();
    const std::string name = label < static_cast<int64_t>(class_names.size())
                                 ? class_names[label]
                                 : std::to_string(label);
    std::cout << "  " << std::fixed << std::setprecision(1) << std::setw(5)
              << 100.0 * values[i].item<double>() << "%  " << name << "\n";
  }
}

void run_predict(const PredictArguments& arguments) {
  TORCH_CHECK(arguments.top_k >= 1, "--top-k must be >= 1, got ", arguments.top_k);
  configure_threads(arguments.threads);
  auto trained = load_trained_model(arguments.checkpoint);
  const auto& config = trained.config;
  const int64_t k = std::min<int64_t>(arguments.top_k, config.model.classes);
  const auto mean = torch::tensor(config.normalization.mean, torch::kFloat32).view({-1, 1, 1});
  const auto std = torch::tensor(config.normalization.std, torch::kFloat32).view({-1, 1, 1});
  // (C, H, W) uint8 -> normalised (C, H, W) float
  const auto normalised = [&](const std::string& path) {
    return (read_image_file(path, config.model.image_channels).to(torch::kFloat32) / 255.0 -
            mean) / std;
  };
  torch::NoGradGuard no_grad;
  if (arguments.native_size) {
    TORCH_CHECK(arguments.resolution.empty(), "--native-size runs each image at its own size; "
                "leave out --resolution, or drop --native-size to resize every image to it");
    // every image at its own size, all in one native-resolution batch; sizes checked first
    std::vector<torch::Tensor> images;
    std::vector<std::pair<int64_t, int64_t>> sizes;
    for (const auto& path : arguments.images) {
      images.push_back(normalised(path));
      sizes.emplace_back(images.back().size(1), images.back().size(2));
    }
    prepare_image_sizes(trained.model, arguments.pad_to_patch, sizes);
    const auto probabilities = torch::softmax(trained.model->forward(images), 1);
    for (size_t i = 0; i < images.size(); ++i)
      print_top_k(arguments.images[i], probabilities[static_cast<int64_t>(i)], k,
                  trained.config.class_names);
    return;
  }
  const auto [height, width] = parse_single_resolution(
      arguments.resolution, {config.model.image_height, config.model.image_width},
      "--resolution");
  prepare_image_sizes(trained.model, arguments.pad_to_patch, {{height, width}});
  for (const auto& path : arguments.images) {
    // normalised (1, C, H, W) at the model's input size
    const auto input = resize_images(normalised(path).unsqueeze(0), height, width);
    print_top_k(path, torch::softmax(trained.model->forward(input), 1).squeeze(0), k,
                trained.config.class_names);
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
  c->add_flag("--native-size", arguments->native_size,
              "run every image at its own size and aspect ratio, not resized, all in one "
              "native-resolution batch (sizes the patch does not divide need --pad-to-patch)");
  add_pad_to_patch_flag(*c, arguments->pad_to_patch);
  add_threads_option(*c, arguments->threads, "intra-op threads (default: all available cores)");
  c->callback([arguments] { run_predict(*arguments); });
}

}  // namespace posenc::cli
