#include "posenc/encoding_options.h"

#include <algorithm>

#include <c10/util/Exception.h>
#include <c10/util/StringUtil.h>

namespace posenc {
namespace {

bool has_type(const nlohmann::json& value, OptionType type) {
  switch (type) {
    case OptionType::Integer:
      return value.is_number_integer();
    case OptionType::Number:
      return value.is_number();
    case OptionType::Boolean:
      return value.is_boolean();
    case OptionType::Choice:
      return value.is_string();
  }
  return false;
}

std::string join(const std::vector<std::string>& items) {
  std::string joined;
  for (const auto& item : items)
    joined += (joined.empty() ? "" : ", ") + item;
  return joined;
}

std::string valid_keys(const std::vector<OptionSpec>& specs) {
  std::vector<std::string> keys;
  for (const auto& spec : specs)
    keys.push_back(spec.key);
  return keys.empty() ? std::string("none (this encoding has no options)") : join(keys);
}

}  // namespace

std::string describe(OptionType type) {
  switch (type) {
    case OptionType::Integer:
      return "integer";
    case OptionType::Number:
      return "number";
    case OptionType::Boolean:
      return "boolean";
    case OptionType::Choice:
      return "choice";
  }
  return "unknown";
}

EncodingOptions::EncodingOptions(const std::string& encoding_name,
                                 const std::vector<OptionSpec>& specs, const nlohmann::json& config)
    : encoding_name_(encoding_name), specs_(specs) {
  TORCH_CHECK(config.is_object(), "configuration of encoding '", encoding_name,
              "' must be a JSON object, got: ", config.dump());
  resolved_ = nlohmann::json::object();
  resolved_["type"] = encoding_name;
  for (const auto& item : config.items()) {
    // not a structured binding: C++17 lambdas cannot capture those
    const std::string& key = item.key();
    const auto& value = item.value();
    if (key == "type") {
      TORCH_CHECK(value == encoding_name, "configuration has type ", value.dump(),
                  " but is being read for encoding '", encoding_name, "'");
      continue;
    }
    auto spec =
        std::find_if(specs.begin(), specs.end(), [&](const OptionSpec& s) { return s.key == key; });
    TORCH_CHECK(spec != specs.end(), "unknown option '", key, "' for encoding '", encoding_name,
                "'; valid options: ", valid_keys(specs));
    TORCH_CHECK(has_type(value, spec->type), "option '", key, "' of encoding '", encoding_name,
                "' must be of type ", describe(spec->type), ", got ", value.dump());
    if (spec->type == OptionType::Choice) {
      const auto text = value.get<std::string>();
      TORCH_CHECK(
          std::find(spec->choices.begin(), spec->choices.end(), text) != spec->choices.end(),
          "option '", key, "' of encoding '", encoding_name, "' must be one of ",
          join(spec->choices), ", got '", text, "'");
    }
    resolved_[key] = value;
  }
  for (const auto& spec : specs) {
    if (!resolved_.contains(spec.key))
      resolved_[spec.key] = spec.default_value;
  }
}

const nlohmann::json& EncodingOptions::value(const std::string& key, OptionType expected) const {
  auto spec =
      std::find_if(specs_.begin(), specs_.end(), [&](const OptionSpec& s) { return s.key == key; });
  // Reading an undeclared option is a bug in the encoding, not a user error.
  TORCH_INTERNAL_ASSERT(spec != specs_.end() && spec->type == expected, "encoding '",
                        encoding_name_, "' reads undeclared option '", key, "'");
  return resolved_.at(key);
}

int64_t EncodingOptions::integer(const std::string& key) const {
  return value(key, OptionType::Integer).get<int64_t>();
}

double EncodingOptions::number(const std::string& key) const {
  return value(key, OptionType::Number).get<double>();
}

bool EncodingOptions::boolean(const std::string& key) const {
  return value(key, OptionType::Boolean).get<bool>();
}

std::string EncodingOptions::choice(const std::string& key) const {
  return value(key, OptionType::Choice).get<std::string>();
}

}  // namespace posenc
