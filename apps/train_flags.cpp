#include "train_flags.h"

#include <c10/util/Exception.h>
#include <c10/util/StringUtil.h>

#include "argument_parsing.h"
#include "posenc/train/run_config.h"
#include "posenc/train/set_training.h"

namespace posenc::cli {
namespace {

constexpr const char* kSetGroup = "Token-set tasks (--task nearest-neighbour|layout; "
                                  "docs/point_sets.md)";
constexpr const char* kRanksGroup = "Data-parallel training (Gloo; see README)";

// The configurations a run starts from, whose values --help gives as the defaults.
const nlohmann::json& image_defaults() {
  static const nlohmann::json json = [] {
    RunConfig config;
    config.model = VisionTransformerOptions::preset("micro");
    return config.to_json();
  }();
  return json;
}
const nlohmann::json& token_set_defaults() {
  static const nlohmann::json json = SetRunConfig{}.to_json();
  return json;
}

nlohmann::json::json_pointer pointer(const std::string& setting) {
  return nlohmann::json::json_pointer(setting);
}

// The default of `flag`'s first setting in the runs it applies to (image runs first).
const nlohmann::json& setting_default(const TrainFlag& flag) {
  const auto& defaults = (flag.kinds & kImageRuns) ? image_defaults() : token_set_defaults();
  return defaults.at(pointer(flag.settings.front()));
}

bool is_text_list(const nlohmann::json& value) {
  return value.is_array() && !value.empty() && value.front().is_string();
}
bool is_switch(const TrainFlag& flag) {
  return flag.is_switch || (!flag.settings.empty() && !flag.parse &&
                            setting_default(flag).is_boolean());
}

std::string type_name(const TrainFlag& flag) {
  if (!flag.type_name.empty())
    return flag.type_name;
  if (flag.settings.empty() || flag.parse)
    return "TEXT";
  const auto& value = setting_default(flag);
  if (value.is_number_unsigned())
    return "UINT";
  if (value.is_number_integer())
    return "INT";
  if (value.is_number_float())
    return "NUMBER";
  return "TEXT";
}

// A default as --help shows it: "0.001", "peg,lff"; empty when there is none to show.
std::string shown(const nlohmann::json& value) {
  if (value.is_string())
    return value.get<std::string>();
  if (value.is_array()) {
    std::string items;
    for (const auto& item : value)
      items += (items.empty() ? "" : ",") + shown(item);
    return items;
  }
  return value.is_boolean() ? "" : value.dump();
}

// "(default 10; token-set tasks: 20)", "(--model micro: 192; token-set tasks: 64)".
std::string default_help(const TrainFlag& flag) {
  if (!flag.default_help.empty())
    return " (default " + flag.default_help + ")";
  if (flag.settings.empty() || is_switch(flag))
    return "";
  const auto at = pointer(flag.settings.front());
  const bool from_preset = flag.settings.front().rfind("/model/", 0) == 0;
  const std::string image = (flag.kinds & kImageRuns) ? shown(image_defaults().at(at)) : "";
  const std::string sets = (flag.kinds & kTokenSetRuns) ? shown(token_set_defaults().at(at)) : "";
  std::vector<std::string> parts;
  if (!image.empty())
    parts.push_back((from_preset ? "--model micro: " : "default ") + image);
  if (!sets.empty() && (sets != image || from_preset))
    parts.push_back(((flag.kinds & kImageRuns) ? "token-set tasks: " : "default ") + sets);
  std::string text;
  for (const auto& part : parts)
    text += (text.empty() ? "" : "; ") + part;
  return text.empty() ? "" : " (" + text + ")";
}

// The value of a setting flag without a parse of its own, read by its default's type.
nlohmann::json parse_by_type(const TrainFlag& flag, const std::vector<std::string>& texts) {
  const auto& model = setting_default(flag);
  if (model.is_boolean())
    return true;
  if (is_text_list(model))
    return texts;
  const std::string& text = texts.back();
  if (model.is_number_unsigned())
    return parse_non_negative_integer_value(text, flag.name);
  if (model.is_number_integer())
    return parse_integer_value(text, flag.name);
  if (model.is_number_float())
    return parse_finite_number_value(text, flag.name);
  TORCH_INTERNAL_ASSERT(model.is_string(), flag.name, ": give it a parse function, its setting ",
                        flag.settings.front(), " is ", model.dump());
  return text;
}

std::vector<int64_t> square_sizes(const std::string& text) {
  std::vector<int64_t> sizes;
  for (const auto& [height, width] : parse_resolutions(text)) {
    TORCH_CHECK(height == width, "--train-resolutions takes square sizes, got ", height, "x",
                width);
    sizes.push_back(height);
  }
  return sizes;
}

// "2x2" -> [2, 2]: G groups of M values.
nlohmann::json position_shape(const std::string& text) {
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

// "12:44" -> [12, 44]: the smallest and largest side of native-size training images, in pixels.
nlohmann::json native_sizes(const std::string& text) {
  const auto colon = text.find(':');
  TORCH_CHECK(colon != std::string::npos && colon > 0 && colon + 1 < text.size(),
              "--native-sizes is MIN:MAX, the smallest and largest image side in pixels, such as "
              "12:44; got '", text, "'");
  const auto smallest = parse_integer_list(text.substr(0, colon));
  const auto largest = parse_integer_list(text.substr(colon + 1));
  TORCH_CHECK(smallest.size() == 1 && largest.size() == 1 && smallest[0] >= 1 &&
                  smallest[0] <= largest[0],
              "--native-sizes is MIN:MAX with 1 <= MIN <= MAX, got '", text, "'");
  return {smallest[0], largest[0]};
}

std::vector<TrainFlag> make_train_flags() {
  const auto image = kImageRuns, sets = kTokenSetRuns;
  const auto source = FlagRole::kSource, run = FlagRole::kRun, process = FlagRole::kProcess;
  auto duration = [](const std::string& text) { return nlohmann::json(parse_duration(text)); };
  // clang-format off
  std::vector<TrainFlag> flags = {
    {.name = "--task", .help = "image, or a token-set task: nearest-neighbour, layout",
     .role = source, .default_help = "image"},
    {.name = "--model", .help = "preset: tiny, small, micro, nano", .kinds = image,
     .role = source, .default_help = "micro"},
    {.name = "--config", .help = "JSON file with \"model\", \"training\" and \"data\" settings, "
     "as checkpoints store them; flags given override it", .role = source,
     .type_name = "FILE"},
    {.name = "--pe", .help = "positional encoding spec, repeatable (e.g. --pe peg --pe lff:F=64)",
     .settings = {"/model/encodings"}},
    {.name = "--pe-after", .help = "blocks after which conditional encodings (peg) run: 0 "
     "(CPVT), 0-5, -1 = before the first block", .kinds = image,
     .settings = {"/model/conditional_after_blocks"},
     .parse = [](const std::string& text) { return nlohmann::json(parse_index_list(text)); },
     .type_name = "BLOCKS"},
    {.name = "--head", .help = "token (class token), gap (global average pooling) or "
     "gap_with_token (the average of the patch tokens beside a class token)", .kinds = image,
     .settings = {"/model/head"}},
    {.name = "--dim", .help = "token dimension", .settings = {"/model/dim"}},
    {.name = "--depth", .help = "number of blocks", .settings = {"/model/depth"}},
    {.name = "--heads", .help = "attention heads", .settings = {"/model/heads"}},
    {.name = "--patch", .help = "patch size in pixels", .kinds = image,
     .settings = {"/model/patch_size"}},
    {.name = "--image-size", .help = "training resolution (square)", .kinds = image,
     .settings = {"/model/image_height", "/model/image_width"}},
    {.name = "--drop-path", .help = "stochastic depth rate of the last block",
     .settings = {"/model/drop_path"}},
    {.name = "--mlp-ratio", .help = "MLP hidden size / dim", .settings = {"/model/mlp_ratio"}},
    {.name = "--pad-to-patch", .help = "zero-pad images the patch size does not divide",
     .kinds = image, .settings = {"/model/pad_to_patch"}},
    {.name = "--epochs", .help = "epochs; on --resume, the run's new length",
     .settings = {"/training/epochs"}, .may_change_on_resume = true},
    {.name = "--batch-size", .help = "batch size", .settings = {"/training/batch_size"}},
    {.name = "--lr", .help = "peak learning rate", .settings = {"/training/learning_rate"}},
    {.name = "--min-lr", .help = "final learning rate",
     .settings = {"/training/min_learning_rate"}},
    {.name = "--warmup-epochs", .help = "linear warm-up epochs, shortened to a tenth of a run "
     "that is not longer unless given", .settings = {"/training/warmup_epochs"}},
    {.name = "--weight-decay", .help = "AdamW weight decay",
     .settings = {"/training/weight_decay"}},
    {.name = "--label-smoothing", .help = "label smoothing",
     .settings = {"/training/label_smoothing"}},
    {.name = "--clip", .help = "gradient norm clip, 0 = off",
     .settings = {"/training/gradient_clip"}},
    {.name = "--seed", .help = "seed for initialisation, order and augmentation",
     .settings = {"/training/seed"}},
    {.name = "--train-resolutions", .help = "multi-scale training: sizes to pick from per batch, "
     "e.g. 20,28,36", .kinds = image, .settings = {"/training/train_resolutions"},
     .parse = [](const std::string& text) { return nlohmann::json(square_sizes(text)); },
     .default_help = "the image size", .type_name = "SIZES"},
    {.name = "--native-sizes", .help = "native-resolution training: each image resized to its "
     "own random height and width in MIN:MAX pixels (multiples of the patch), images of "
     "different sizes and aspect ratios in one batch", .kinds = image,
     .settings = {"/training/native_sizes"}, .parse = native_sizes, .default_help = "off",
     .type_name = "MIN:MAX"},
    {.name = "--time-budget", .help = "stop after this long (90s, 15m, 2h) with a checkpoint; on "
     "--resume, the new budget", .settings = {"/training/time_budget_seconds"}, .parse = duration,
     .default_help = "none", .may_change_on_resume = true, .type_name = "DURATION"},
    {.name = "--crop-padding", .help = "random crop padding in pixels", .kinds = image,
     .settings = {"/training/augmentation/crop_padding"}},
    {.name = "--resized-crop", .help = "random resized crop minimum area fraction, 0 = off",
     .kinds = image, .settings = {"/training/augmentation/resized_crop_min_scale"}},
    {.name = "--hflip", .help = "horizontal flip probability", .kinds = image,
     .settings = {"/training/augmentation/horizontal_flip"},
     .default_help = c10::str(AugmentationOptions{}.horizontal_flip, "; 0 for idx digit data")},
    {.name = "--data", .help = "fashion-mnist, idx or folder", .kinds = image,
     .settings = {"/data/kind"}},
    {.name = "--data-dir", .help = "fashion-mnist: folder of the .gz files; folder: root with "
     "train/ and test/", .kinds = image, .settings = {"/data/directory"}},
    {.name = "--train-images", .help = "idx: training images file", .kinds = image,
     .settings = {"/data/train_images"}},
    {.name = "--train-labels", .help = "idx: training labels file", .kinds = image,
     .settings = {"/data/train_labels"}},
    {.name = "--test-images", .help = "idx: test images file", .kinds = image,
     .settings = {"/data/test_images"}},
    {.name = "--test-labels", .help = "idx: test labels file", .kinds = image,
     .settings = {"/data/test_labels"}},
    {.name = "--channels", .help = "folder: read images with 1 or 3 channels", .kinds = image,
     .settings = {"/data/channels"}},
    {.name = "--train-subset", .help = "train on N images, the first of each class in file "
     "order, as many of each class as possible", .kinds = image,
     .settings = {"/data/train_subset"}, .default_help = "the whole training split"},
    {.name = "--train-sets", .help = "generated training sets", .kinds = sets,
     .settings = {"/data/train_sets"}, .group = kSetGroup},
    {.name = "--test-sets", .help = "generated test sets", .kinds = sets,
     .settings = {"/data/test_sets"}, .group = kSetGroup},
    {.name = "--points", .help = "nearest-neighbour: points per set", .kinds = sets,
     .settings = {"/data/points"}, .group = kSetGroup},
    {.name = "--labels", .help = "nearest-neighbour: point labels = classes", .kinds = sets,
     .settings = {"/data/labels"}, .group = kSetGroup},
    {.name = "--widget-types", .help = "layout: widget types", .kinds = sets,
     .settings = {"/data/widget_types"}, .group = kSetGroup},
    {.name = "--data-seed", .help = "seed of the generated sets", .kinds = sets,
     .settings = {"/data/seed"}, .group = kSetGroup},
    {.name = "--train-jsonl", .help = "your training token sets (JSON Lines)", .kinds = sets,
     .settings = {"/data/train_jsonl"}, .group = kSetGroup},
    {.name = "--test-jsonl", .help = "your test token sets (JSON Lines)", .kinds = sets,
     .settings = {"/data/test_jsonl"}, .group = kSetGroup},
    {.name = "--position-shape", .help = "positions as GxM: 1x2 points, 2x2 boxes as two "
     "corners, or 1x4", .kinds = sets,
     .settings = {"/model/position_groups", "/model/position_values"}, .parse = position_shape,
     .default_help = "nearest-neighbour 1x2, layout 2x2, your data's own", .group = kSetGroup,
     .type_name = "GxM"},
    {.name = "--out", .help = "output folder for checkpoint, metrics and plot", .role = run,
     .default_help = "runs/train", .type_name = "FOLDER"},
    {.name = "--resume", .help = "continue the run in --out from its last checkpoint, with its "
     "settings (only --epochs and --time-budget may change)", .role = run, .is_switch = true},
    {.name = "--threads", .help = "intra-op threads", .role = process,
     .default_help = "the available cores, shared by the ranks on this machine",
     .type_name = "INT"},
    {.name = "--nproc", .help = "run this many ranks on this machine, one process each",
     .kinds = image, .role = process, .group = kRanksGroup, .type_name = "INT"},
    {.name = "--world-size", .help = "number of ranks in the run (env WORLD_SIZE)",
     .kinds = image, .role = process, .group = kRanksGroup, .type_name = "INT"},
    {.name = "--rank", .help = "this process's rank, 0 .. world size - 1 (env RANK)",
     .kinds = image, .role = process, .group = kRanksGroup, .type_name = "INT"},
    {.name = "--master-addr", .help = "address of rank 0's machine (env MASTER_ADDR)",
     .kinds = image, .role = process, .default_help = "127.0.0.1", .group = kRanksGroup,
     .type_name = "ADDRESS"},
    {.name = "--master-port", .help = "rendezvous port on rank 0's machine (env MASTER_PORT)",
     .kinds = image, .role = process, .default_help = "29500, with --nproc a free one",
     .group = kRanksGroup, .type_name = "INT"},
    {.name = "--timeout", .help = "how long to wait for other ranks (to join, in a step) before "
     "failing: 90s, 5m", .kinds = image, .role = process, .default_help = "5m",
     .group = kRanksGroup, .type_name = "DURATION"},
  };
  // clang-format on
  return flags;
}

}  // namespace

const std::vector<TrainFlag>& train_flags() {
  static const std::vector<TrainFlag> flags = make_train_flags();
  return flags;
}

const TrainFlag& train_flag(const std::string& name) {
  for (const auto& flag : train_flags()) {
    if (flag.name == name)
      return flag;
  }
  TORCH_INTERNAL_ASSERT(false, name, " is not in the table of posenc train's flags");
}

void add_train_flags(CLI::App& command) {
  for (const auto& flag : train_flags()) {
    for (const auto& setting : flag.settings) {
      TORCH_INTERNAL_ASSERT(
          (!(flag.kinds & kImageRuns) || image_defaults().contains(pointer(setting))) &&
              (!(flag.kinds & kTokenSetRuns) || token_set_defaults().contains(pointer(setting))),
          flag.name, ": ", setting, " is not a setting of every run it applies to");
    }
    const std::string help = flag.help + default_help(flag);
    CLI::Option* option = is_switch(flag) ? command.add_flag(flag.name, help)
                                          : command.add_option(flag.name, help);
    if (!is_switch(flag)) {
      option->type_name(type_name(flag));
      if (!flag.settings.empty() && !flag.parse && is_text_list(setting_default(flag)))
        option->expected(1, CLI::detail::expected_max_vector_size)->take_all();
    }
    if (!flag.group.empty())
      option->group(flag.group);
  }
}

bool given(const CLI::App& command, const std::string& flag) {
  return command.count(flag) > 0;
}

const std::string& flag_text(const CLI::App& command, const std::string& flag) {
  const auto& results = command.get_option(flag)->results();
  TORCH_INTERNAL_ASSERT(!results.empty(), flag, " was not given");
  return results.back();
}

void refuse_flags_of_other_runs(const std::string& task, const CLI::App& command) {
  const bool sets = task != "image";
  for (const auto& flag : train_flags()) {
    if ((flag.kinds & (sets ? kTokenSetRuns : kImageRuns)) || !given(command, flag.name))
      continue;
    TORCH_CHECK(!sets, flag.name, " applies to image runs, not to the token-set task ", task,
                flag.group == kRanksGroup ? " (token-set runs train in one process)" : "",
                "; drop it");
    TORCH_CHECK(false, flag.name,
                " applies to token-set tasks (--task nearest-neighbour or layout), not to image "
                "runs; drop it");
  }
}

void refuse_changed_settings_on_resume(const CLI::App& command, const std::string& out_dir) {
  for (const auto& flag : train_flags()) {
    const bool changes_the_run = flag.role == FlagRole::kSource ||
                                 (flag.role == FlagRole::kSetting && !flag.may_change_on_resume);
    TORCH_CHECK(!changes_the_run || !given(command, flag.name), flag.name,
                " would change a resumed run: --resume continues the run in ", out_dir,
                " with the settings its checkpoint stores, of which only --epochs and "
                "--time-budget may change; drop ",
                flag.name, ", or start a new run with another --out");
  }
}

nlohmann::json with_given_settings(nlohmann::json config, unsigned kinds,
                                   const CLI::App& command) {
  for (const auto& flag : train_flags()) {
    if (flag.role != FlagRole::kSetting || !(flag.kinds & kinds) || !given(command, flag.name))
      continue;
    const auto& texts = command.get_option(flag.name)->results();
    const auto value = flag.parse ? flag.parse(texts.back()) : parse_by_type(flag, texts);
    const bool spread = flag.settings.size() > 1 && value.is_array() &&
                        value.size() == flag.settings.size();
    for (size_t i = 0; i < flag.settings.size(); ++i)
      config[pointer(flag.settings[i])] = spread ? value[i] : value;
  }
  return config;
}

bool setting_chosen(const std::string& setting, const CLI::App& command,
                    const nlohmann::json& config_file) {
  if (config_file.is_object() && config_file.contains(pointer(setting)))
    return true;
  for (const auto& flag : train_flags()) {
    for (const auto& written : flag.settings) {
      if (written == setting && given(command, flag.name))
        return true;
    }
  }
  return false;
}

}  // namespace posenc::cli
