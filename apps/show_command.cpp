// `posenc show`: what a checkpoint holds without loading its model: how far its run got and every
// setting it stores (model, encodings with all options resolved, data, recipe, normalisation,
// class names), as text or JSON.
#include <cmath>
#include <iostream>

#include <c10/util/StringUtil.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "posenc/train/checkpoint.h"
#include "posenc/train/set_training.h"

namespace posenc::cli {
namespace {

struct ShowArguments {
  std::string checkpoint;
  bool json = false;
};

// One line: what the run is and how far it got.
std::string progress_line(const nlohmann::json& config, const TrainingProgress& progress) {
  const bool token_sets = SetRunConfig::describes(config);
  const std::string what =
      token_sets ? "token-set model (task " + config.at("task").get<std::string>() + ")"
                 : std::string("image classifier");
  if (progress.global_step == 0)
    return what + ", not trained by posenc (imported, or saved before its first step)";
  const auto epochs = config.at("training").at("epochs").get<int64_t>();
  std::string line = c10::str(what, ", ", progress.epoch, " of ", epochs, " epochs trained");
  if (progress.batch_in_epoch > 0)
    line += c10::str(" and ", progress.batch_in_epoch, " steps of epoch ", progress.epoch + 1);
  return c10::str(line, " (", progress.global_step, " optimiser steps, ",
                  std::llround(progress.elapsed_seconds), " s of training, ",
                  progress.world_size, progress.world_size == 1 ? " rank)" : " ranks)");
}

void run_show(const ShowArguments& arguments) {
  const auto checkpoint = CheckpointBytes::read(arguments.checkpoint);
  const auto config = read_checkpoint_config(checkpoint);
  const auto progress = read_training_progress(checkpoint);
  if (arguments.json) {
    std::cout << nlohmann::json{{"checkpoint", arguments.checkpoint},
                                {"progress",
                                 {{"epochs_done", progress.epoch},
                                  {"steps_in_epoch", progress.batch_in_epoch},
                                  {"optimiser_steps", progress.global_step},
                                  {"training_seconds", progress.elapsed_seconds},
                                  {"ranks", progress.world_size}}},
                                {"config", config}}
                     .dump(2)
              << "\n";
    return;
  }
  std::cout << arguments.checkpoint << ": " << progress_line(config, progress) << "\n"
            << "stored settings (every option resolved, as the model is rebuilt from them):\n"
            << config.dump(2) << "\n";
}

}  // namespace

void add_show_command(CLI::App& app) {
  auto arguments = std::make_shared<ShowArguments>();
  auto* c = app.add_subcommand(
      "show", "Print what a checkpoint stores: its run's progress and every setting");
  c->add_option("checkpoint,--checkpoint", arguments->checkpoint, "posenc checkpoint (last.pt)")
      ->required();
  c->add_flag("--json", arguments->json, "print it as JSON");
  c->callback([arguments] { run_show(*arguments); });
}

}  // namespace posenc::cli
