// `posenc eval`: accuracy of a trained model at several test resolutions (images resized up or
// down, so the token grid changes), as a table or JSON.
#include <iomanip>
#include <iostream>

#include <torch/torch.h>

#include "argument_parsing.h"
#include "commands.h"
#include "posenc/system_info.h"
#include "posenc/train/evaluation.h"
#include "posenc/train/trained_model.h"

namespace posenc::cli {
namespace {

struct EvalArguments {
  std::string checkpoint;
  std::string resolutions;
  bool json = false;
  int64_t batch_size = 500;
  int threads = 0;
};

void run_eval(const EvalArguments& arguments) {
  configure_threads(arguments.threads);
  std::cerr << blas_warning(detect_blas());
  auto trained = load_trained_model(arguments.checkpoint);
  const auto& model_options = trained.config.model;
  const auto resolutions =
      arguments.resolutions.empty()
          ? std::vector<std::pair<int64_t, int64_t>>{{model_options.image_height,
                                                      model_options.image_width}}
          : parse_resolutions(arguments.resolutions);
  const auto test_data = trained.config.data.load("test");
  nlohmann::json rows = nlohmann::json::array();
  if (!arguments.json) {
    std::cout << "test accuracy of " << arguments.checkpoint << " (trained at "
              << model_options.image_height << "x" << model_options.image_width << ", "
              << test_data.size() << " test images)\n"
              << std::left << std::setw(13) << "resolution" << std::setw(9) << "tokens"
              << std::setw(11) << "accuracy"
              << "loss\n";
  }
  for (const auto& [height, width] : resolutions) {
    const auto result = evaluate(trained.model, test_data, trained.config.normalization, height,
                                 width, arguments.batch_size);
    const int64_t patch = model_options.patch_size;
    const auto grid = c10::str((height + patch - 1) / patch, "x", (width + patch - 1) / patch);
    rows.push_back({{"height", height},
                    {"width", width},
                    {"grid", grid},
                    {"accuracy", result.accuracy},
                    {"loss", result.loss},
                    {"images", result.images}});
    if (!arguments.json) {
      const bool trained_size =
          height == model_options.image_height && width == model_options.image_width;
      std::cout << std::setw(13) << c10::str(height, "x", width, trained_size ? "*" : "")
                << std::setw(9) << grid << std::setw(11)
                << c10::str(std::fixed, std::setprecision(2), 100.0 * result.accuracy, "%")
                << std::fixed << std::setprecision(4) << result.loss << "\n";
    }
  }
  if (arguments.json) {
    std::cout << nlohmann::json{{"checkpoint", arguments.checkpoint}, {"results", rows}}.dump(2)
              << "\n";
  } else {
    std::cout << "* trained resolution\n";
  }
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto arguments = std::make_shared<EvalArguments>();
  auto* c = app.add_subcommand("eval", "Test accuracy of a checkpoint at several resolutions");
  c->add_option("--checkpoint", arguments->checkpoint, "checkpoint written by posenc train")
      ->required();
  c->add_option("--resolutions", arguments->resolutions,
                "test sizes, e.g. 20,28,36 or 28x40 (default: the trained size)");
  c->add_flag("--json", arguments->json, "print the results as JSON");
  c->add_option("--batch-size", arguments->batch_size, "evaluation batch size")
      ->capture_default_str();
  c->add_option("--threads", arguments->threads, "intra-op threads (default: all available cores)");
  c->callback([arguments] { run_eval(*arguments); });
}

}  // namespace posenc::cli
