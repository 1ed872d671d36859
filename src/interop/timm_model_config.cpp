#include "posenc/interop/timm_model_config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <c10/util/Exception.h>
#include <c10/util/StringUtil.h>

namespace posenc {
namespace {

// One object of the file and where it sits in it, for messages that name the key.
struct Section {
  const nlohmann::json& json;
  std::string origin;  // "config.json" or "config.json: pretrained_cfg"

  const nlohmann::json* find(const char* key) const {
    const auto found = json.find(key);
    return found == json.end() || found->is_null() ? nullptr : &*found;
  }
  std::string where(const char* key) const { return c10::str(origin, ": \"", key, "\""); }

  int64_t positive_integer(const char* key) const {
    const auto* value = find(key);
    if (value == nullptr)
      return 0;
    TORCH_CHECK(value->is_number_integer() && value->get<int64_t>() > 0, where(key),
                " must be a positive whole number, got ", value->dump());
    return value->get<int64_t>();
  }
  std::string text(const char* key) const {
    const auto* value = find(key);
    if (value == nullptr)
      return "";
    TORCH_CHECK(value->is_string(), where(key), " must be a string, got ", value->dump());
    return value->get<std::string>();
  }
  std::vector<double> numbers(const char* key) const {
    const auto* value = find(key);
    if (value == nullptr)
      return {};
    TORCH_CHECK(value->is_array() && !value->empty(), where(key),
                " must be a list of numbers, got ", value->dump());
    std::vector<double> numbers;
    for (const auto& number : *value) {
      TORCH_CHECK(number.is_number(), where(key), " must be a list of numbers, got ",
                  value->dump());
      numbers.push_back(number.get<double>());
    }
    return numbers;
  }
};

// timm's label_names: a list in classifier order, or {"0": name, "1": name, ...}.
std::vector<std::string> label_names(const nlohmann::json& value, const std::string& where) {
  std::vector<std::string> names;
  if (value.is_array()) {
    for (const auto& name : value) {
      TORCH_CHECK(name.is_string(), where, " must hold strings, got ", name.dump());
      names.push_back(name.get<std::string>());
    }
    return names;
  }
  TORCH_CHECK(value.is_object(), where, " must be a list of names or {\"index\": name}, got ",
              value.dump().substr(0, 80));
  names.resize(value.size());
  for (const auto& [key, name] : value.items()) {
    size_t used = 0;
    int64_t index = -1;
    try {
      index = std::stoll(key, &used);
    } catch (const std::exception&) {
    }
    TORCH_CHECK(used == key.size() && index >= 0 && index < static_cast<int64_t>(names.size()) &&
                    name.is_string(),
                where, " maps class indices 0..", names.size() - 1,
                " to names; this one is \"", key, "\": ", name.dump(),
                " (posenc needs a name for every class, without gaps)");
    names[index] = name.get<std::string>();
  }
  return names;
}

}  // namespace

TimmModelConfig parse_timm_model_config(const nlohmann::json& json, const std::string& origin) {
  TORCH_CHECK(json.is_object(), origin, " is not a timm model config: it is not a JSON object");
  TimmModelConfig config;
  const Section root{json, origin};
  // the older layout is one dictionary, with pretrained_cfg's keys at the root
  const auto* pretrained_json = root.find("pretrained_cfg");
  TORCH_CHECK(pretrained_json == nullptr || pretrained_json->is_object(),
              root.where("pretrained_cfg"), " must be an object");
  const Section pretrained{pretrained_json != nullptr ? *pretrained_json : json,
                           pretrained_json != nullptr ? origin + ": pretrained_cfg" : origin};
  const nlohmann::json no_arguments = nlohmann::json::object();
  const auto* arguments_json = root.find("model_args");
  TORCH_CHECK(arguments_json == nullptr || arguments_json->is_object(),
              root.where("model_args"), " must be an object");
  const Section arguments{arguments_json != nullptr ? *arguments_json : no_arguments,
                          origin + ": model_args"};

  config.architecture = root.text("architecture");
  config.classes = root.positive_integer("num_classes");
  if (config.classes == 0)
    config.classes = pretrained.positive_integer("num_classes");
  config.heads = arguments.positive_integer("num_heads");
  config.global_pool = root.text("global_pool");
  if (config.global_pool.empty())
    config.global_pool = arguments.text("global_pool");

  if (const auto* size = pretrained.find("input_size")) {
    TORCH_CHECK(size->is_array() && size->size() == 3 &&
                    std::all_of(size->begin(), size->end(),
                                [](const auto& v) { return v.is_number_integer() && v > 0; }),
                pretrained.where("input_size"), " must be [channels, height, width], got ",
                size->dump());
    config.channels = (*size)[0].get<int64_t>();
    config.image_height = (*size)[1].get<int64_t>();
    config.image_width = (*size)[2].get<int64_t>();
  }
  if (const auto* size = arguments.find("img_size")) {
    // timm's img_size: one side, or [height, width]
    const bool one = size->is_number_integer() && size->get<int64_t>() > 0;
    const bool two = size->is_array() && size->size() == 2 && (*size)[0].is_number_integer() &&
                     (*size)[1].is_number_integer() && (*size)[0] > 0 && (*size)[1] > 0;
    TORCH_CHECK(one || two, arguments.where("img_size"),
                " must be a side or [height, width], got ", size->dump());
    config.image_height = one ? size->get<int64_t>() : (*size)[0].get<int64_t>();
    config.image_width = one ? size->get<int64_t>() : (*size)[1].get<int64_t>();
  }
  if (const int64_t channels = arguments.positive_integer("in_chans"))
    config.channels = channels;

  config.mean = pretrained.numbers("mean");
  config.std = pretrained.numbers("std");
  for (double value : config.std)
    TORCH_CHECK(value > 0.0, pretrained.where("std"), " must be positive, got ", value);
  for (const char* key : {"label_names", "labels"}) {
    const auto* names = root.find(key);
    if (names == nullptr)
      names = pretrained.find(key);
    if (names != nullptr && config.class_names.empty())
      config.class_names = label_names(*names, root.where(key));
  }
  if (const auto* posenc = root.find("posenc")) {
    const auto after = posenc->find("pe_after");
    TORCH_CHECK(posenc->is_object() && (after == posenc->end() || after->is_array()),
                root.where("posenc"), " must be {\"pe_after\": [block, ...]}, got ",
                posenc->dump());
    if (after != posenc->end())
      for (const auto& block : *after) {
        TORCH_CHECK(block.is_number_integer() && block >= -1, root.where("posenc"),
                    ": pe_after must list block indices (-1: before the first), got ",
                    after->dump());
        config.conditional_after_blocks.push_back(block.get<int64_t>());
      }
  }
  if (config.channels > 0)
    for (const auto* values : {&config.mean, &config.std})
      TORCH_CHECK(values->empty() || static_cast<int64_t>(values->size()) == config.channels,
                  origin, ": mean and std need one value per input channel (", config.channels,
                  " in input_size), got ", values->size());
  TORCH_CHECK(config.class_names.empty() || config.classes == 0 ||
                  static_cast<int64_t>(config.class_names.size()) == config.classes,
              origin, " names ", config.class_names.size(), " classes in label_names but says ",
              "num_classes ", config.classes);
  return config;
}

TimmModelConfig read_timm_model_config(const std::string& path) {
  std::ifstream file(path);
  TORCH_CHECK(file.good(), "cannot read the model config ", path,
              std::filesystem::exists(path) ? ": permission denied?" : ": no such file");
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(file);
  } catch (const nlohmann::json::parse_error& error) {
    TORCH_CHECK(false, path, " is not JSON (", error.what(),
                "); a timm model config is the config.json beside the weights");
  }
  return parse_timm_model_config(json, path);
}

nlohmann::json timm_model_config_json(const TimmModelConfig& config,
                                      const nlohmann::json& model_args) {
  nlohmann::json pretrained = {
      {"input_size", {config.channels, config.image_height, config.image_width}},
      {"fixed_input_size", false},
      {"interpolation", "bicubic"},
      {"crop_pct", 1.0},
      {"num_classes", config.classes},
      {"first_conv", "patch_embed.proj"},
      {"classifier", "head"}};
  if (!config.mean.empty())
    pretrained["mean"] = config.mean;
  if (!config.std.empty())
    pretrained["std"] = config.std;
  nlohmann::json json;
  if (!config.architecture.empty())
    json["architecture"] = config.architecture;
  json["num_classes"] = config.classes;
  if (!config.global_pool.empty())
    json["global_pool"] = config.global_pool;
  if (!config.class_names.empty())
    json["label_names"] = config.class_names;
  if (!model_args.empty())
    json["model_args"] = model_args;
  json["pretrained_cfg"] = pretrained;
  if (!config.conditional_after_blocks.empty())
    json["posenc"] = {{"pe_after", config.conditional_after_blocks}};
  return json;
}

std::string timm_model_config_path_beside(const std::string& state_dict_path) {
  std::filesystem::path path(state_dict_path);
  path.replace_extension(".config.json");
  return path.string();
}

}  // namespace posenc
