// `posenc eval`: accuracy of a trained model at several test resolutions (images resized up or
// down, so the token grid changes), as a table or JSON. For a token-set model: accuracy at several
// coordinate ranges (positions never seen in training), with the correlation of its positional
// embedding's similarity with L2 distance before and after training.
#include <iomanip>
#include <iostream>
#include <sstream>

#include <torch/torch.h>

#include "argument_parsing.h"
#include "commands.h"
#include "pad_to_patch_flag.h"
#include "posenc/data/token_sets_jsonl.h"
#include "posenc/system_info.h"
#include "posenc/train/checkpoint.h"
#include "posenc/train/evaluation.h"
#include "posenc/train/set_training.h"
#include "posenc/train/trained_model.h"
#include "test_data_flags.h"
#include "thread_count.h"

namespace posenc::cli {
namespace {

struct EvalArguments {
  std::string checkpoint;
  std::string resolutions;
  std::string coordinate_ranges;
  std::string test_jsonl;
  int64_t probe_positions = 256;
  bool json = false;
  int64_t batch_size = 500;
  TestDataFlags data;
  bool pad_to_patch = false;
  int threads = 0;
};

// The first `count` real tokens' positions of `data`: (P, G, M)
torch::Tensor first_positions(const TokenSets& data, int64_t count) {
  auto positions = data.positions.index({data.mask});  // (tokens, G, M)
  return positions.narrow(0, 0, std::min(count, positions.size(0)));
}

void run_set_eval(const EvalArguments& arguments, const CLI::App& command) {
  for (const char* flag : {"--resolutions", "--data", "--data-dir", "--test-images",
                           "--test-labels", "--channels", "--pad-to-patch"}) {
    TORCH_CHECK(command.count(flag) == 0, flag,
                " applies to image models; this checkpoint is a token-set model: use "
                "--coordinate-ranges or --test-jsonl");
  }
  TORCH_CHECK(arguments.probe_positions >= 3, "--probe-positions must be >= 3, got ",
              arguments.probe_positions);
  auto trained = load_trained_set_model(arguments.checkpoint);
  const auto& config = trained.config;
  auto initial = initial_set_model(config);
  const auto& model = config.model;
  // (label, data) for each evaluation
  std::vector<std::pair<std::string, TokenSets>> evaluations;
  if (!arguments.test_jsonl.empty()) {
    TORCH_CHECK(arguments.coordinate_ranges.empty(),
                "--coordinate-ranges applies to generated sets; --test-jsonl is read as it is");
    evaluations.emplace_back(arguments.test_jsonl, read_token_sets_jsonl(arguments.test_jsonl));
  } else if (config.data.user_data()) {
    TORCH_CHECK(arguments.coordinate_ranges.empty(),
                "this model was trained on your token sets, which have no coordinate range to "
                "change; write the positions to test into a file and pass --test-jsonl");
    evaluations.emplace_back(config.data.test_jsonl, config.data.load("test"));
  } else {
    const std::string ranges =
        arguments.coordinate_ranges.empty() ? "0:1" : arguments.coordinate_ranges;
    std::stringstream items(ranges);
    std::vector<CoordinateRange> parsed;  // all of them before any set is drawn
    for (std::string item; std::getline(items, item, ',');)
      parsed.push_back(CoordinateRange::parse(item));
    for (const auto& range : parsed)
      evaluations.emplace_back(range.describe(), config.data.load("test", range));
  }
  nlohmann::json rows = nlohmann::json::array();
  if (!arguments.json) {
    std::cout << "per-token test accuracy of " << arguments.checkpoint << " (task "
              << config.data.task << ", positions G=" << model.position_groups
              << ", M=" << model.position_values << ", trained at 0:1)\n"
              << std::left << std::setw(16) << "positions" << std::setw(9) << "tokens"
              << std::setw(11) << "accuracy" << std::setw(9) << "loss"
              << "similarity~distance (initial -> trained)" << std::endl;
  }
  for (const auto& [label, given] : evaluations) {
    const auto data = fit_to_model(given, model, label);
    const auto result = evaluate_token_sets(trained.model, data, arguments.batch_size);
    const auto probe = first_positions(data, arguments.probe_positions);
    // a rotary encoding alone adds no embedding whose similarities could be measured
    const bool measurable = !trained.model->positions_only_in_attention();
    const double before = measurable ? embedding_distance_correlation(initial, probe) : 0.0;
    const double after = measurable ? embedding_distance_correlation(trained.model, probe) : 0.0;
    rows.push_back({{"positions", label},
                    {"accuracy", result.accuracy},
                    {"loss", result.loss},
                    {"tokens", result.tokens},
                    {"similarity_distance_correlation",
                     measurable ? nlohmann::json{{"initial", before}, {"trained", after}}
                                : nlohmann::json(nullptr)}});
    if (!arguments.json) {
      std::cout << std::setw(16) << label << std::setw(9) << result.tokens << std::setw(11)
                << c10::str(std::fixed, std::setprecision(2), 100.0 * result.accuracy, "%")
                << std::setw(9) << c10::str(std::fixed, std::setprecision(4), result.loss);
      if (measurable)
        std::cout << std::fixed << std::setprecision(3) << before << " -> " << after;
      else
        std::cout << "n/a (rotary: positions act in attention, no embedding)";
      std::cout << std::endl;  // each row as soon as it is known, also into a pipe
    } else {
      std::cerr << "evaluated " << label << "\n";
    }
  }
  if (arguments.json) {
    std::cout << nlohmann::json{{"checkpoint", arguments.checkpoint},
                                {"task", config.data.task},
                                {"results", rows}}
                     .dump(2)
              << "\n";
  }
}

void run_eval(const EvalArguments& arguments, const CLI::App& command) {
  TORCH_CHECK(arguments.batch_size >= 1, "--batch-size must be >= 1, got ", arguments.batch_size);
  configure_threads(arguments.threads);
  std::cerr << library_warning(detect_libraries());
  if (SetRunConfig::describes(read_checkpoint_config(arguments.checkpoint)))
    return run_set_eval(arguments, command);
  for (const char* flag : {"--coordinate-ranges", "--test-jsonl", "--probe-positions"}) {
    TORCH_CHECK(command.count(flag) == 0, flag,
                " applies to token-set models (posenc train --task ...); this checkpoint is an "
                "image model: use --resolutions");
  }
  auto trained = load_trained_model(arguments.checkpoint);
  apply_test_data_flags(trained.config, arguments.data, command);
  const auto& model_options = trained.config.model;
  const auto resolutions =
      arguments.resolutions.empty()
          ? std::vector<std::pair<int64_t, int64_t>>{{model_options.image_height,
                                                      model_options.image_width}}
          : parse_resolutions(arguments.resolutions);
  prepare_image_sizes(trained.model, arguments.pad_to_patch, resolutions);
  const auto test_data = trained.config.data.load("test");
  if (!test_data.changes.empty())
    std::cerr << "note: " << test_data.source << ": " << test_data.changes << "\n";
  nlohmann::json rows = nlohmann::json::array();
  if (!arguments.json) {
    std::cout << "test accuracy of " << arguments.checkpoint << " (trained at "
              << model_options.image_height << "x" << model_options.image_width << ", "
              << test_data.size() << " test images)\n"
              << std::left << std::setw(13) << "resolution" << std::setw(9) << "tokens"
              << std::setw(11) << "accuracy"
              << "loss" << std::endl;
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
                << std::fixed << std::setprecision(4) << result.loss
                << std::endl;  // each row as soon as it is known, also into a pipe
    } else {
      std::cerr << "evaluated " << height << "x" << width << "\n";
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
  auto* c = app.add_subcommand(
      "eval", "Test accuracy of a checkpoint at several resolutions (or coordinate ranges)");
  c->add_option("--checkpoint", arguments->checkpoint, "checkpoint written by posenc train")
      ->required();
  c->add_option("--resolutions", arguments->resolutions,
                "test sizes, e.g. 20,28,36 or 28x40 (default: the trained size)");
  c->add_option("--coordinate-ranges", arguments->coordinate_ranges,
                "token-set models: ranges low:high to draw test positions from, e.g. 0:1,0:2,1:2 "
                "(default 0:1, the training range)");
  c->add_option("--test-jsonl", arguments->test_jsonl,
                "token-set models: evaluate on these token sets (JSON Lines) instead");
  c->add_option("--probe-positions", arguments->probe_positions,
                "token-set models: positions for the similarity-distance correlation")
      ->capture_default_str();
  c->add_flag("--json", arguments->json, "print the results as JSON");
  c->add_option("--batch-size", arguments->batch_size, "evaluation batch size")
      ->capture_default_str();
  add_threads_option(*c, arguments->threads, "intra-op threads (default: all available cores)");
  add_pad_to_patch_flag(*c, arguments->pad_to_patch);
  add_test_data_flags(*c, arguments->data);
  c->callback([arguments, c] { run_eval(*arguments, *c); });
}

}  // namespace posenc::cli
