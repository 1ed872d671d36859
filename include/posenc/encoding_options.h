#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace posenc {

enum class OptionType { Integer, Number, Boolean, Choice };

// One configurable option of an encoding: its key, type, default and meaning. Each encoding
// declares its options once; validation, defaults, `posenc info` and docs all read that list.
struct OptionSpec {
  std::string key;
  OptionType type;
  nlohmann::json default_value;
  std::string help;
  std::vector<std::string> choices = {};  // the allowed values of a Choice option
};

std::string describe(OptionType type);

// An encoding's configuration after validation: every declared option present, with its default
// where the user gave none. Construction rejects unknown keys (listing the valid ones), values of
// the wrong type and choices outside the allowed set.
class EncodingOptions {
 public:
  // config: {"type": "<encoding name>", "<key>": <value>, ...}; "type" may be absent.
  EncodingOptions(const std::string& encoding_name, const std::vector<OptionSpec>& specs,
                  const nlohmann::json& config);

  int64_t integer(const std::string& key) const;
  double number(const std::string& key) const;
  bool boolean(const std::string& key) const;
  std::string choice(const std::string& key) const;

  const std::string& encoding_name() const { return encoding_name_; }
  // {"type": name, every option: value}: enough to rebuild the same encoding.
  const nlohmann::json& resolved() const { return resolved_; }

 private:
  const nlohmann::json& value(const std::string& key, OptionType expected) const;

  std::string encoding_name_;
  std::vector<OptionSpec> specs_;
  nlohmann::json resolved_;
};

}  // namespace posenc
