// `posenc train`: train a VisionTransformer with the chosen positional encodings, or with
// --task nearest-neighbour|layout a SetTransformer on token sets at continuous positions.
// Image settings come from, in increasing precedence: the preset (--model), a JSON file
// (--config, with "model", "training" and "data" objects as stored in checkpoints), and explicit
// flags. Token-set settings come from the set defaults (docs/point_sets.md) and explicit flags.
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>

#include <c10/util/Exception.h>
#include <torch/torch.h>

#include "argument_parsing.h"
#include "commands.h"
#include "local_ranks.h"
#include "posenc/distributed/communicator.h"
#include "posenc/system_info.h"
#include "posenc/train/checkpoint.h"
#include "posenc/train/set_training.h"
#include "posenc/train/trainer.h"

namespace posenc::cli {
namespace {

struct TrainArguments {
  std::string task = "image";
  std::string preset = "micro";
  std::string config_file;
  std::vector<std::string> encodings;
  std::string conditional_after;
  std::string head;
  int64_t dim = 0, depth = 0, heads = 0, patch = 0, image_size = 0;
  double drop_path = 0.0, mlp_ratio = 0.0;
  bool pad_to_patch = false;

  int64_t epochs = 0, batch_size = 0;
  double learning_rate = 0.0, min_learning_rate = 0.0, warmup_epochs = 0.0, weight_decay = 0.0,
         label_smoothing = 0.0, gradient_clip = 0.0, resized_crop = 0.0, horizontal_flip = 0.0;
  int64_t crop_padding = 0;
  uint64_t seed = 0;
  std::string train_resolutions, time_budget;

  std::string data_kind, data_dir, train_images, train_labels, test_images, test_labels;
  int64_t channels = 0, train_subset = 0;

  // token-set tasks
  int64_t train_sets = 0, test_sets = 0, points = 0, labels = 0, widget_types = 0;
  uint64_t data_seed = 0;
  std::string train_jsonl, test_jsonl, position_shape;

  std::string out = "runs/train";
  bool resume = false;
  int threads = 0;

  // data-parallel training
  int64_t nproc = 0, world_size = 0, rank = 0, master_port = 0;
  std::string master_addr, timeout;
};

// Options that only say how this process joins a data-parallel run; the others describe the
// run, which ranks other than 0 take from rank 0.
bool describes_the_run(const std::string& flag) {
  for (const char* own : {"--world-size", "--rank", "--master-addr", "--master-port", "--timeout",
                          "--threads", "--nproc"}) {
    if (flag == own)
      return false;
  }
  return true;
}

RendezvousOptions rendezvous_options(const TrainArguments& a, const CLI::App& command) {
  auto given = [&](const char* flag) { return command.count(flag) > 0; };
  auto options = RendezvousOptions::from_environment();
  if (given("--world-size"))
    options.world_size = a.world_size;
  if (given("--rank"))
    options.rank = a.rank;
  if (given("--master-addr"))
    options.master_addr = a.master_addr;
  if (given("--master-port"))
    options.master_port = a.master_port;
  if (given("--timeout"))
    options.timeout_seconds = parse_duration(a.timeout);
  return options;
}

// --nproc N: rank 0 gets the command line without --nproc and --master-port, which the launcher
// sets for each rank; the other ranks take the run from rank 0 and get only the options that
// concern their own process.
int launch_ranks(const TrainArguments& a, const CLI::App& command) {
  for (const char* flag : {"--rank", "--world-size", "--master-addr"}) {
    TORCH_CHECK(command.count(flag) == 0, "--nproc starts every rank on this machine and sets ",
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
  const double timeout = command.count("--timeout") > 0 ? parse_duration(a.timeout)
                                                        : RendezvousOptions{}.timeout_seconds;
  return run_local_ranks(a.nproc, leader, follower, a.master_port, timeout);
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream file(path);
  TORCH_CHECK(file.good(), "--config: cannot read ", path);
  try {
    return nlohmann::json::parse(file);
  } catch (const nlohmann::json::parse_error& error) {
    TORCH_CHECK(false, "--config ", path, " is not valid JSON: ", error.what());
  }
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
void note_fitted_warmup(TrainingOptions& training) {
  if (training.fit_default_warmup_to_run()) {
    std::cerr << "warm-up: " << training.warmup_epochs << " epochs, a tenth of the run (the "
              << "default warm-up of " << TrainingOptions{}.warmup_epochs << " does not fit a "
              << training.epochs << "-epoch run; --warmup-epochs sets it)\n";
  }
}

RunConfig build_config(const TrainArguments& a, const CLI::App& command) {
  auto given = [&](const char* flag) { return command.count(flag) > 0; };
  RunConfig config;
  config.model = VisionTransformerOptions::preset(a.preset);
  nlohmann::json json = config.to_json();
  bool file_sets_warmup = false;
  if (!a.config_file.empty()) {
    const auto file = read_json_file(a.config_file);
    TORCH_CHECK(file.is_object(), "--config ", a.config_file, " must hold a JSON object");
    for (const auto& item : file.items()) {
      TORCH_CHECK(item.key() == "model" || item.key() == "training" || item.key() == "data",
                  "--config ", a.config_file, ": unknown section '", item.key(),
                  "'; valid sections: model, training, data");
    }
    merge_into(json, file);
    file_sets_warmup = file.contains("training") && file["training"].is_object() &&
                       file["training"].contains("warmup_epochs");
  }
  auto& model = json["model"];
  if (given("--pe"))
    model["encodings"] = a.encodings;
  if (given("--pe-after"))
    model["conditional_after_blocks"] = parse_index_list(a.conditional_after);
  if (given("--head"))
    model["head"] = a.head;
  if (given("--dim"))
    model["dim"] = a.dim;
  if (given("--depth"))
    model["depth"] = a.depth;
  if (given("--heads"))
    model["heads"] = a.heads;
  if (given("--patch"))
    model["patch_size"] = a.patch;
  if (given("--image-size"))
    model["image_height"] = model["image_width"] = a.image_size;
  if (given("--drop-path"))
    model["drop_path"] = a.drop_path;
  if (given("--mlp-ratio"))
    model["mlp_ratio"] = a.mlp_ratio;
  if (given("--pad-to-patch"))
    model["pad_to_patch"] = a.pad_to_patch;

  auto& data = json["data"];
  if (given("--data"))
    data["kind"] = a.data_kind;
  if (given("--data-dir"))
    data["directory"] = a.data_dir;
  if (given("--train-images"))
    data["train_images"] = a.train_images;
  if (given("--train-labels"))
    data["train_labels"] = a.train_labels;
  if (given("--test-images"))
    data["test_images"] = a.test_images;
  if (given("--test-labels"))
    data["test_labels"] = a.test_labels;
  if (given("--channels"))
    data["channels"] = a.channels;
  if (given("--train-subset"))
    data["train_subset"] = a.train_subset;
  if (data.value("kind", "") == "folder") {
    // image folders are resized to the model's input size
    data["height"] = model["image_height"];
    data["width"] = model["image_width"];
  }

  auto& training = json["training"];
  auto& augmentation = training["augmentation"];
  if (given("--epochs"))
    training["epochs"] = a.epochs;
  if (given("--batch-size"))
    training["batch_size"] = a.batch_size;
  if (given("--lr"))
    training["learning_rate"] = a.learning_rate;
  if (given("--min-lr"))
    training["min_learning_rate"] = a.min_learning_rate;
  if (given("--warmup-epochs"))
    training["warmup_epochs"] = a.warmup_epochs;
  if (given("--weight-decay"))
    training["weight_decay"] = a.weight_decay;
  if (given("--label-smoothing"))
    training["label_smoothing"] = a.label_smoothing;
  if (given("--clip"))
    training["gradient_clip"] = a.gradient_clip;
  if (given("--seed"))
    training["seed"] = a.seed;
  if (given("--train-resolutions")) {
    std::vector<int64_t> sizes;
    for (const auto& [height, width] : parse_resolutions(a.train_resolutions)) {
      TORCH_CHECK(height == width, "--train-resolutions takes square sizes, got ", height, "x",
                  width);
      sizes.push_back(height);
    }
    training["train_resolutions"] = sizes;
  }
  if (given("--time-budget"))
    training["time_budget_seconds"] = parse_duration(a.time_budget);
  if (given("--crop-padding"))
    augmentation["crop_padding"] = a.crop_padding;
  if (given("--resized-crop"))
    augmentation["resized_crop_min_scale"] = a.resized_crop;
  if (given("--hflip")) {
    augmentation["horizontal_flip"] = a.horizontal_flip;
  } else if (!DataSource::from_json(data).flips_preserve_class()) {
    augmentation["horizontal_flip"] = 0.0;  // a mirrored digit is another digit, or none
  }
  if (!given("--warmup-epochs") && !file_sets_warmup && training["epochs"].is_number_integer() &&
      training["warmup_epochs"].is_number()) {
    TrainingOptions recipe;  // only the two numbers, before the whole recipe is checked
    recipe.epochs = training["epochs"].get<int64_t>();
    recipe.warmup_epochs = training["warmup_epochs"].get<double>();
    note_fitted_warmup(recipe);
    training["warmup_epochs"] = recipe.warmup_epochs;
  }
  return RunConfig::from_json(json);
}

// Flags that describe only image runs, and flags that describe only token-set runs: giving one
// to the other kind of run is an error rather than a silently ignored setting.
const std::vector<std::string>& image_only_flags() {
  static const std::vector<std::string> flags = {
      "--model", "--config", "--pe-after", "--head", "--patch", "--image-size", "--pad-to-patch",
      "--train-resolutions", "--crop-padding", "--resized-crop", "--hflip", "--data",
      "--data-dir", "--train-images", "--train-labels", "--test-images", "--test-labels",
      "--channels", "--train-subset", "--nproc", "--world-size", "--rank", "--master-addr",
      "--master-port", "--timeout"};
  return flags;
}
const std::vector<std::string>& set_only_flags() {
  static const std::vector<std::string> flags = {
      "--train-sets", "--test-sets", "--points", "--labels", "--widget-types", "--data-seed",
      "--train-jsonl", "--test-jsonl", "--position-shape"};
  return flags;
}

// The flags of a data-parallel run's ranks.
bool is_rank_flag(const std::string& flag) {
  for (const char* rank_flag :
       {"--nproc", "--world-size", "--rank", "--master-addr", "--master-port", "--timeout"})
    if (flag == rank_flag)
      return true;
  return false;
}

// `task` is the run's task: --task, or the one stored in the checkpoint a --resume continues.
void refuse_flags_of_the_other_kind(const std::string& task, const CLI::App& command) {
  const bool sets = task != "image";
  for (const auto& flag : sets ? image_only_flags() : set_only_flags()) {
    TORCH_CHECK(command.count(flag) == 0, flag,
                sets ? " applies to image runs, not to the token-set task "
                     : " applies to token-set tasks (--task nearest-neighbour or layout), not to ",
                sets ? task : std::string("image runs"),
                sets && is_rank_flag(flag) ? " (token-set runs train in one process)" : "",
                "; drop it");
  }
}

// "2x2" -> {2, 2}
std::pair<int64_t, int64_t> parse_position_shape(const std::string& text) {
  const auto x = text.find('x');
  TORCH_CHECK(x != std::string::npos && x > 0 && x + 1 < text.size(),
              "--position-shape is GxM (groups x values per group), such as 1x2 for points or "
              "2x2 for boxes as two corners; got '",
              text, "'");
  const auto groups = parse_integer_list(text.substr(0, x));
  const auto values = parse_integer_list(text.substr(x + 1));
  TORCH_CHECK(groups.size() == 1 && values.size() == 1 && groups[0] >= 1 && values[0] >= 1,
              "--position-shape is GxM with G, M >= 1, got '", text, "'");
  return {groups[0], values[0]};
}

// The token-set defaults (docs/point_sets.md), then the flags given.
SetRunConfig build_set_config(const TrainArguments& a, const CLI::App& command) {
  auto given = [&](const char* flag) { return command.count(flag) > 0; };
  SetRunConfig config;
  auto& data = config.data;
  data.task = a.task;
  if (given("--train-sets"))
    data.train_sets = a.train_sets;
  if (given("--test-sets"))
    data.test_sets = a.test_sets;
  if (given("--points"))
    data.points = a.points;
  if (given("--labels"))
    data.labels = a.labels;
  if (given("--widget-types"))
    data.widget_types = a.widget_types;
  if (given("--data-seed"))
    data.seed = a.data_seed;
  if (given("--train-jsonl"))
    data.train_jsonl = a.train_jsonl;
  if (given("--test-jsonl"))
    data.test_jsonl = a.test_jsonl;
  data.validate();

  auto& model = config.model;
  // a box is two corners sharing the Fourier features (LFF's grouping); a point is one group
  std::pair<int64_t, int64_t> shape = a.task == "layout" ? std::pair<int64_t, int64_t>{2, 2}
                                                         : std::pair<int64_t, int64_t>{1, 2};
  if (given("--position-shape")) {
    shape = parse_position_shape(a.position_shape);
  } else if (data.user_data()) {
    const auto sample = data.load("train");
    shape = {sample.groups(), sample.values()};
  }
  model.position_groups = shape.first;
  model.position_values = shape.second;
  if (given("--pe"))
    model.encodings = a.encodings;
  if (given("--dim"))
    model.dim = a.dim;
  if (given("--depth"))
    model.depth = a.depth;
  if (given("--heads"))
    model.heads = a.heads;
  if (given("--drop-path"))
    model.drop_path = a.drop_path;
  if (given("--mlp-ratio"))
    model.mlp_ratio = a.mlp_ratio;

  auto& training = config.training;  // SetRunConfig's recipe, as a library caller gets it
  if (given("--epochs"))
    training.epochs = a.epochs;
  if (given("--batch-size"))
    training.batch_size = a.batch_size;
  if (given("--label-smoothing"))
    training.label_smoothing = a.label_smoothing;
  if (given("--lr"))
    training.learning_rate = a.learning_rate;
  if (given("--min-lr"))
    training.min_learning_rate = a.min_learning_rate;
  if (given("--warmup-epochs"))
    training.warmup_epochs = a.warmup_epochs;
  if (given("--weight-decay"))
    training.weight_decay = a.weight_decay;
  if (given("--clip"))
    training.gradient_clip = a.gradient_clip;
  if (given("--seed"))
    training.seed = a.seed;
  if (given("--time-budget"))
    training.time_budget_seconds = parse_duration(a.time_budget);
  if (!given("--warmup-epochs"))
    note_fitted_warmup(training);
  training.validate();
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

void report(const TrainingOutcome& outcome, const std::string& out_dir, bool sets) {
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

void run_set_train(const TrainArguments& arguments, const CLI::App& command) {
  configure_threads(arguments.threads);
  std::cerr << library_warning(detect_libraries());
  ResumeOverrides overrides;
  if (command.count("--epochs") > 0)
    overrides.epochs = arguments.epochs;
  if (command.count("--time-budget") > 0)
    overrides.time_budget_seconds = parse_duration(arguments.time_budget);
  const auto outcome = arguments.resume
                           ? resume_token_set_training(arguments.out, overrides)
                           : train_token_sets(build_set_config(arguments, command), arguments.out);
  report(outcome, arguments.out, /*sets=*/true);
}

void run_train(const TrainArguments& arguments, const CLI::App& command) {
  TORCH_CHECK(arguments.task == "image" || arguments.task == "nearest-neighbour" ||
                  arguments.task == "layout",
              "unknown --task '", arguments.task, "'; tasks: image, nearest-neighbour, layout");
  // a resumed run's kind is the checkpoint's, whatever --task says by default
  const std::string task = arguments.resume && command.count("--task") == 0
                               ? resumed_task(arguments.out)
                               : arguments.task;
  refuse_flags_of_the_other_kind(task, command);
  if (task != "image")
    return run_set_train(arguments, command);
  if (command.count("--nproc") > 0) {
    const int status = launch_ranks(arguments, command);
    if (status != 0)
      throw CLI::RuntimeError(status);
    return;
  }
  stop_when_launcher_dies();
  Communicator communicator(rendezvous_options(arguments, command));
  // ranks on one machine share its cores instead of each taking all of them
  const bool threads_chosen = arguments.threads > 0 || std::getenv("OMP_NUM_THREADS") != nullptr;
  configure_threads(
      threads_chosen ? arguments.threads
                     : std::max<int>(1, available_cores() /
                                            static_cast<int>(communicator.ranks_on_this_host())));
  if (!communicator.is_leader()) {
    for (const auto* option : command.get_options()) {
      const std::string flag = option->get_name();
      if (option->count() > 0 && describes_the_run(flag)) {
        std::cerr << "rank " << communicator.rank() << ": ignoring " << flag
                  << ": ranks other than 0 take the run's settings from rank 0\n";
      }
    }
    join_training(communicator);
    communicator.finish();
    return;
  }
  std::cerr << library_warning(detect_libraries());
  TrainingOutcome outcome;
  if (arguments.resume) {
    ResumeOverrides overrides;
    if (command.count("--epochs") > 0)
      overrides.epochs = arguments.epochs;
    if (command.count("--time-budget") > 0) {
      overrides.time_budget_seconds = parse_duration(arguments.time_budget);
    }
    outcome = resume_training(arguments.out, overrides, communicator);
  } else {
    outcome = train(build_config(arguments, command), arguments.out, communicator);
  }
  communicator.finish();
  report(outcome, arguments.out, /*sets=*/false);
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto arguments = std::make_shared<TrainArguments>();
  auto* c = app.add_subcommand(
      "train", "Train a ViT with the chosen positional encodings, or a set model (--task)");
  auto& a = *arguments;
  c->add_option("--task", a.task,
                "image (default), or a token-set task: nearest-neighbour, layout")
      ->capture_default_str();
  c->add_option("--model", a.preset, "preset: tiny, small, micro, nano")->capture_default_str();
  c->add_option("--config", a.config_file, "JSON file with model/training/data settings");
  c->add_option("--pe", a.encodings,
                "positional encoding spec, repeatable (e.g. --pe peg --pe lff:F=64); default peg "
                "(token-set tasks: lff)");
  c->add_option("--pe-after", a.conditional_after,
                "blocks after which conditional encodings (peg) run: 0 (CPVT), 0-5, -1 = before "
                "the first block");
  c->add_option("--head", a.head,
                "token (class token), gap (global average pooling) or gap_with_token (the average "
                "of the patch tokens beside a class token)");
  c->add_option("--dim", a.dim, "token dimension");
  c->add_option("--depth", a.depth, "number of blocks");
  c->add_option("--heads", a.heads, "attention heads");
  c->add_option("--patch", a.patch, "patch size in pixels");
  c->add_option("--image-size", a.image_size, "training resolution (square)");
  c->add_option("--drop-path", a.drop_path, "stochastic depth rate of the last block");
  c->add_option("--mlp-ratio", a.mlp_ratio, "MLP hidden size / dim");
  c->add_flag("--pad-to-patch", a.pad_to_patch, "zero-pad images the patch size does not divide");
  const TrainingOptions images;
  const TrainingOptions set_recipe = SetRunConfig::default_training();
  c->add_option("--epochs", a.epochs,
                c10::str("epochs (default ", images.epochs, "; token-set tasks ", set_recipe.epochs,
                         ")"));
  c->add_option("--batch-size", a.batch_size,
                c10::str("batch size (default ", images.batch_size, "; token-set tasks ",
                         set_recipe.batch_size, ")"));
  c->add_option("--lr", a.learning_rate, "peak learning rate (default 1e-3)");
  c->add_option("--min-lr", a.min_learning_rate, "final learning rate (default 1e-5)");
  c->add_option("--warmup-epochs", a.warmup_epochs,
                c10::str("linear warm-up epochs (default ", images.warmup_epochs,
                         ", or a tenth of a run that is not longer)"));
  c->add_option("--weight-decay", a.weight_decay, "AdamW weight decay (default 0.05)");
  c->add_option("--label-smoothing", a.label_smoothing,
                c10::str("label smoothing (default ", images.label_smoothing,
                         "; token-set tasks ", set_recipe.label_smoothing, ")"));
  c->add_option("--clip", a.gradient_clip, "gradient norm clip, 0 = off (default 1)");
  c->add_option("--seed", a.seed, "seed for initialisation, order and augmentation (default 0)");
  c->add_option("--train-resolutions", a.train_resolutions,
                "multi-scale training: sizes to pick from per batch, e.g. 20,28,36");
  c->add_option("--crop-padding", a.crop_padding, "random crop padding in pixels (default 2)");
  c->add_option("--resized-crop", a.resized_crop,
                "random resized crop minimum area fraction, 0 = off (default 0)");
  c->add_option("--hflip", a.horizontal_flip,
                "horizontal flip probability (default 0.5; 0 for idx digit data)");
  c->add_option("--data", a.data_kind, "fashion-mnist (default), idx or folder");
  c->add_option("--data-dir", a.data_dir,
                "fashion-mnist: folder of the .gz files; folder: root with train/ and test/");
  c->add_option("--train-images", a.train_images, "idx: training images file");
  c->add_option("--train-labels", a.train_labels, "idx: training labels file");
  c->add_option("--test-images", a.test_images, "idx: test images file");
  c->add_option("--test-labels", a.test_labels, "idx: test labels file");
  c->add_option("--channels", a.channels, "folder: read images with 1 or 3 channels");
  c->add_option("--train-subset", a.train_subset,
                "train on N images, the first of each class in file order, as many of each class "
                "as possible (default: the whole training split)");
  auto* sets = "Token-set tasks (--task nearest-neighbour|layout; docs/point_sets.md)";
  c->add_option("--train-sets", a.train_sets, "generated training sets (default 20000)")
      ->group(sets);
  c->add_option("--test-sets", a.test_sets, "generated test sets (default 2000)")->group(sets);
  c->add_option("--points", a.points, "nearest-neighbour: points per set (default 16)")
      ->group(sets);
  c->add_option("--labels", a.labels, "nearest-neighbour: point labels = classes (default 8)")
      ->group(sets);
  c->add_option("--widget-types", a.widget_types, "layout: widget types (default 6)")
      ->group(sets);
  c->add_option("--data-seed", a.data_seed, "seed of the generated sets (default 0)")
      ->group(sets);
  c->add_option("--train-jsonl", a.train_jsonl, "your training token sets (JSON Lines)")
      ->group(sets);
  c->add_option("--test-jsonl", a.test_jsonl, "your test token sets (JSON Lines)")->group(sets);
  c->add_option("--position-shape", a.position_shape,
                "positions as GxM: 1x2 points (nearest-neighbour default), 2x2 boxes as two "
                "corners (layout default) or 1x4")
      ->group(sets);
  c->add_option("--out", a.out, "output folder for checkpoint, metrics and plot")
      ->capture_default_str();
  c->add_flag("--resume", a.resume,
              "continue the run in --out from its last checkpoint, with its settings (only "
              "--epochs and --time-budget may change)");
  c->add_option("--time-budget", a.time_budget,
                "stop after this long (90s, 15m, 2h) with a checkpoint");
  c->add_option("--threads", a.threads,
                "intra-op threads (default: the available cores, shared by the ranks on this "
                "machine)");
  auto* distributed = "Data-parallel training (Gloo; see README)";
  c->add_option("--nproc", a.nproc, "run this many ranks on this machine, one process each")
      ->group(distributed);
  c->add_option("--world-size", a.world_size, "number of ranks in the run (env WORLD_SIZE)")
      ->group(distributed);
  c->add_option("--rank", a.rank, "this process's rank, 0 .. world size - 1 (env RANK)")
      ->group(distributed);
  c->add_option("--master-addr", a.master_addr,
                "address of rank 0's machine (env MASTER_ADDR; default 127.0.0.1)")
      ->group(distributed);
  c->add_option("--master-port", a.master_port,
                "rendezvous port on rank 0's machine (env MASTER_PORT; default 29500, with "
                "--nproc a free one)")
      ->group(distributed);
  c->add_option("--timeout", a.timeout,
                "how long to wait for other ranks (to join, in a step) before failing: 90s, 5m "
                "(default 5m)")
      ->group(distributed);
  c->callback([arguments, c] { run_train(*arguments, *c); });
}

}  // namespace posenc::cli
