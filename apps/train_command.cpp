// `posenc train`: train a VisionTransformer with the chosen positional encodings, or with
// --task nearest-neighbour|layout a SetTransformer on token sets at continuous positions.
// Settings come from, in increasing precedence: the library's defaults (for images the preset,
// --model; for token sets docs/point_sets.md's), a JSON file (--config, with "model", "training"
// and "data" objects as stored in checkpoints), and the flags given. Every flag is declared once,
// in train_flags.cpp.
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include <c10/util/Exception.h>
#include <torch/torch.h>

#include "argument_parsing.h"
#include "commands.h"
#include "local_ranks.h"
#include "thread_count.h"
#include "train_flags.h"
#include "posenc/distributed/communicator.h"
#include "posenc/system_info.h"
#include "posenc/train/checkpoint.h"
#include "posenc/train/set_training.h"
#include "posenc/train/trainer.h"

namespace posenc::cli {
namespace {

RendezvousOptions rendezvous_options(const CLI::App& command) {
  auto options = RendezvousOptions::from_environment();
  if (given(command, "--world-size"))
    options.world_size = parse_integer_value(flag_text(command, "--world-size"), "--world-size");
  if (given(command, "--rank"))
    options.rank = parse_integer_value(flag_text(command, "--rank"), "--rank");
  if (given(command, "--master-addr"))
    options.master_addr = flag_text(command, "--master-addr");
  if (given(command, "--master-port"))
    options.master_port = parse_integer_value(flag_text(command, "--master-port"), "--master-port");
  if (given(command, "--timeout"))
    options.timeout_seconds = parse_duration(flag_text(command, "--timeout"));
  return options;
}

// --nproc N: rank 0 gets the command line without --nproc and --master-port, which the launcher
// sets for each rank; the other ranks take the run from rank 0 and get only the options that
// concern their own process.
int launch_ranks(const CLI::App& command) {
  for (const char* flag : {"--rank", "--world-size", "--master-addr"}) {
    TORCH_CHECK(!given(command, flag), "--nproc starts every rank on this machine and sets ",
                flag, " itself; drop ", flag, " (or drop --nproc and start each rank yourself)");
  }
  const auto& original = command_line();
  std::vector<std::string> leader{original.at(0)};
  std::vector<std::string> follower{original.at(0), "train"};
  for (size_t i = 1; i < original.size(); ++i) {
    const std::string& argument = original[i];
    const std::string flag = argument.substr(0, argument.find('='));
    const bool value_follows = argument == flag && flag.rfind("--", 0) == 0 &&
                               i + 1 < original.size() && command.get_option_no_throw(flag) &&
                               command.get_option_no_throw(flag)->get_expected_min() > 0;
    std::vector<std::string> item{argument};
    if (value_follows)
      item.push_back(original[++i]);
    if (flag == "--nproc" || flag == "--master-port")
      continue;
    leader.insert(leader.end(), item.begin(), item.end());
    if (flag == "--threads" || flag == "--timeout")
      follower.insert(follower.end(), item.begin(), item.end());
  }
  const double timeout = given(command, "--timeout")
                             ? parse_duration(flag_text(command, "--timeout"))
                             : RendezvousOptions{}.timeout_seconds;
  const int64_t ranks = parse_integer_value(flag_text(command, "--nproc"), "--nproc");
  const int64_t port = given(command, "--master-port")
                           ? parse_integer_value(flag_text(command, "--master-port"),
                                                 "--master-port")
                           : 0;
  return run_local_ranks(ranks, leader, follower, port, timeout);
}

// The --config file (null without one): an object of "model", "training" and "data" settings.
nlohmann::json read_config_file(const CLI::App& command) {
  if (!given(command, "--config"))
    return nullptr;
  const std::string& path = flag_text(command, "--config");
  std::ifstream file(path);
  TORCH_CHECK(file.good(), "--config: cannot read ", path);
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(file);
  } catch (const nlohmann::json::parse_error& error) {
    TORCH_CHECK(false, "--config ", path, " is not valid JSON: ", error.what());
  }
  TORCH_CHECK(json.is_object(), "--config ", path, " must hold a JSON object");
  for (const auto& item : json.items()) {
    TORCH_CHECK(item.key() == "model" || item.key() == "training" || item.key() == "data",
                "--config ", path, ": unknown section '", item.key(),
                "'; valid sections: model, training, data");
  }
  return json;
}

// Overlays the keys of `patch` on `base` (objects merge recursively, other values replace).
void merge_into(nlohmann::json& base, const nlohmann::json& patch) {
  for (const auto& item : patch.items()) {
    if (item.value().is_object() && base.contains(item.key()) && base[item.key()].is_object()) {
      merge_into(base[item.key()], item.value());
    } else {
      base[item.key()] = item.value();
    }
  }
}

// For a run whose warm-up nobody chose: fits the default warm-up to a short run, and says so.
void fit_unchosen_warmup(nlohmann::json& training, const CLI::App& command,
                         const nlohmann::json& file) {
  if (setting_chosen("/training/warmup_epochs", command, file) ||
      !training["epochs"].is_number_integer() || !training["warmup_epochs"].is_number())
    return;  // the whole recipe's check reports what is wrong
  TrainingOptions recipe;
  recipe.epochs = training["epochs"].get<int64_t>();
  recipe.warmup_epochs = training["warmup_epochs"].get<double>();
  if (recipe.fit_default_warmup_to_run()) {
    std::cerr << "warm-up: " << recipe.warmup_epochs << " epochs, a tenth of the run (the "
              << "default warm-up of " << TrainingOptions{}.warmup_epochs << " does not fit a "
              << recipe.epochs << "-epoch run; --warmup-epochs sets it)\n";
  }
  training["warmup_epochs"] = recipe.warmup_epochs;
}

// A flag that this run would ignore is refused, not silently dropped: the user meant something
// by it. (Only flags: a --config file may hold every key, as a checkpoint's configuration does.)
void refuse_flags_without_effect(const RunConfig& config, const CLI::App& command) {
  TORCH_CHECK(!given(command, "--pe-after") || config.model.has_conditional_encoding(),
              "--pe-after places conditional encodings such as peg, but the model's encodings (",
              config.model.encodings.empty() ? std::string("none")
                                             : c10::Join(", ", config.model.encodings),
              ") have none; add one (--pe peg beside the others) or leave --pe-after out");
  TORCH_CHECK(!given(command, "--channels") || config.data.kind == "folder",
              "--channels sets how image folders are read; ", config.data.kind,
              " images keep the channels they were stored with, so leave it out");
}

// An image run: the preset (--model), then --config's file, then the flags given.
RunConfig build_config(const CLI::App& command) {
  RunConfig defaults;
  defaults.model = VisionTransformerOptions::preset(
      given(command, "--model") ? flag_text(command, "--model") : std::string("micro"));
  nlohmann::json json = defaults.to_json();
  const auto file = read_config_file(command);
  if (!file.is_null())
    merge_into(json, file);
  json = with_given_settings(std::move(json), kImageRuns, command);
  if (json["data"].value("kind", "") == "folder") {
    // image folders are resized to the model's input size
    json["data"]["height"] = json["model"]["image_height"];
    json["data"]["width"] = json["model"]["image_width"];
  }
  if (!setting_chosen("/training/augmentation/horizontal_flip", command, file) &&
      !DataSource::from_json(json["data"]).flips_preserve_class()) {
    json["training"]["augmentation"]["horizontal_flip"] = 0.0;  // a mirrored digit is another
  }
  fit_unchosen_warmup(json["training"], command, file);
  auto config = RunConfig::from_json(json);
  refuse_flags_without_effect(config, command);
  config.data = config.data.with_absolute_paths();  // eval finds them from any folder
  return config;
}

// A token-set run: the library's token-set defaults (docs/point_sets.md), then --config's file,
// then the flags given.
SetRunConfig build_set_config(const std::string& task, const CLI::App& command) {
  SetRunConfig defaults;
  defaults.data.task = task;
  nlohmann::json json = defaults.to_json();
  const auto file = read_config_file(command);
  if (!file.is_null())
    merge_into(json, file);
  json = with_given_settings(std::move(json), kTokenSetRuns, command);
  const bool shape_chosen = setting_chosen("/model/position_groups", command, file) ||
                            setting_chosen("/model/position_values", command, file);
  if (!shape_chosen) {
    // a box is two corners sharing the Fourier features (LFF's grouping); a point is one group;
    // your own data has the shape its file holds
    const auto data = SetTaskSource::from_json(json["data"]);
    std::pair<int64_t, int64_t> shape{task == "layout" ? 2 : 1, 2};
    if (data.user_data()) {
      const auto sample = data.load("train");
      shape = {sample.groups(), sample.values()};
    }
    json["model"]["position_groups"] = shape.first;
    json["model"]["position_values"] = shape.second;
  }
  fit_unchosen_warmup(json["training"], command, file);
  auto config = SetRunConfig::from_json(json);
  config.data.validate();
  config.training.validate();
  return config;
}

// The task of the run a --resume of `out_dir` continues: "image", or the token-set task stored
// in its checkpoint; "image" when there is no checkpoint (resume_training says so).
std::string resumed_task(const std::string& out_dir) {
  const std::string checkpoint = out_dir + "/last.pt";
  std::ifstream probe(checkpoint);
  if (!probe.good())
    return "image";
  const auto config = read_checkpoint_config(checkpoint);
  return SetRunConfig::describes(config) ? config.at("task").get<std::string>() : "image";
}

// An interrupted run exits as a process stopped by that signal does (130 for Ctrl-C, 143 for
// SIGTERM), so `posenc train && posenc eval` does not go on with an unfinished run; a run that
// reached its --time-budget stopped as asked and exits 0.
void exit_if_interrupted(const TrainingOutcome& outcome) {
  if (outcome.status == TrainingOutcome::Status::Interrupted)
    throw CLI::RuntimeError(128 + outcome.signal);
}

void report(const TrainingOutcome& outcome, const std::string& out_dir, bool sets) {
  exit_if_interrupted(outcome);
  if (outcome.status != TrainingOutcome::Status::Completed)
    return;
  if (outcome.last_test_accuracy) {
    std::cout << "trained " << outcome.epochs_done << " epochs; test accuracy "
              << 100.0 * *outcome.last_test_accuracy << "%; checkpoint " << outcome.checkpoint
              << "\n";
  } else {
    std::cout << "the run in " << out_dir << " had already completed its " << outcome.epochs_done
              << " epochs; pass --epochs to train it longer\n";
  }
  if (sets) {
    std::cout << "evaluate at other coordinate ranges: posenc eval --checkpoint "
              << outcome.checkpoint << " --coordinate-ranges 0:1,0:2,1:2\n";
  } else {
    std::cout << "evaluate at other resolutions: posenc eval --checkpoint " << outcome.checkpoint
              << " --resolutions 20,28,36\n";
  }
}

ResumeOverrides resume_overrides(const CLI::App& command) {
  ResumeOverrides overrides;
  if (given(command, "--epochs"))
    overrides.epochs = parse_integer_value(flag_text(command, "--epochs"), "--epochs");
  if (given(command, "--time-budget"))
    overrides.time_budget_seconds = parse_duration(flag_text(command, "--time-budget"));
  return overrides;
}

// --threads as given (checked), or 0 for the library's default.
int requested_threads(const CLI::App& command) {
  return given(command, "--threads")
             ? checked_thread_count(parse_integer_value(flag_text(command, "--threads"),
                                                        "--threads"))
             : 0;
}

void run_set_train(const std::string& task, const std::string& out, const CLI::App& command) {
  configure_threads(requested_threads(command));
  std::cerr << library_warning(detect_libraries());
  const auto outcome = given(command, "--resume")
                           ? resume_token_set_training(out, resume_overrides(command))
                           : train_token_sets(build_set_config(task, command), out);
  report(outcome, out, /*sets=*/true);
}

void run_train(const CLI::App& command) {
  const std::string task = given(command, "--task") ? flag_text(command, "--task") : "image";
  TORCH_CHECK(task == "image" || task == "nearest-neighbour" || task == "layout",
              "unknown --task '", task, "'; tasks: image, nearest-neighbour, layout");
  const std::string out = given(command, "--out") ? flag_text(command, "--out") : "runs/train";
  const bool resume = given(command, "--resume");
  if (resume)
    refuse_changed_settings_on_resume(command, out);
  // a resumed run's kind is the checkpoint's
  const std::string kind = resume ? resumed_task(out) : task;
  refuse_flags_of_other_runs(kind, command);
  if (kind != "image")
    return run_set_train(kind, out, command);
  if (given(command, "--nproc")) {
    const int status = launch_ranks(command);
    if (status != 0)
      throw CLI::RuntimeError(status);
    return;
  }
  stop_when_launcher_dies();
  Communicator communicator(rendezvous_options(command));
  // ranks on one machine share its cores instead of each taking all of them
  const int threads = requested_threads(command);
  const bool threads_chosen = threads > 0 || std::getenv("OMP_NUM_THREADS") != nullptr;
  configure_threads(
      threads_chosen ? threads
                     : std::max<int>(1, available_cores() /
                                            static_cast<int>(communicator.ranks_on_this_host())));
  if (!communicator.is_leader()) {
    for (const auto& flag : train_flags()) {
      if (given(command, flag.name) && flag.role != FlagRole::kProcess) {
        std::cerr << "rank " << communicator.rank() << ": ignoring " << flag.name
                  << ": ranks other than 0 take the run's settings from rank 0\n";
      }
    }
    const auto outcome = join_training(communicator);
    communicator.finish();
    exit_if_interrupted(outcome);
    return;
  }
  std::cerr << library_warning(detect_libraries());
  const TrainingOutcome outcome =
      resume ? resume_training(out, resume_overrides(command), communicator)
             : train(build_config(command), out, communicator);
  communicator.finish();
  report(outcome, out, /*sets=*/false);
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto* command = app.add_subcommand(
      "train", "Train a ViT with the chosen positional encodings, or a set model (--task)");
  add_train_flags(*command);
  command->callback([command] { run_train(*command); });
}

}  // namespace posenc::cli
