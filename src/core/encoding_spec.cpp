#include "posenc/encoding_spec.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include <c10/util/Exception.h>

namespace posenc {
namespace {

std::string trim(const std::string& text) {
  const auto begin = text.find_first_not_of(" \t\n\r");
  if (begin == std::string::npos)
    return "";
  const auto end = text.find_last_not_of(" \t\n\r");
  return text.substr(begin, end - begin + 1);
}

// The JSON value a compact-form value stands for: integer, finite number, boolean or string.
nlohmann::json parse_value(const std::string& text) {
  errno = 0;
  char* end = nullptr;
  const long long integer = std::strtoll(text.c_str(), &end, 10);
  if (*end == '\0' && errno == 0)
    return static_cast<int64_t>(integer);
  errno = 0;
  const double number = std::strtod(text.c_str(), &end);
  // "nan" and "inf" stay strings, so option validation rejects them as non-numbers.
  if (*end == '\0' && errno == 0 && std::isfinite(number))
    return number;
  if (text == "true")
    return true;
  if (text == "false")
    return false;
  return text;
}

}  // namespace

nlohmann::json parse_encoding_spec(const std::string& spec) {
  const std::string text = trim(spec);
  if (!text.empty() && text.front() == '{') {
    nlohmann::json config;
    try {
      config = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& error) {
      TORCH_CHECK(false, "encoding configuration is not valid JSON: ", error.what());
    }
    TORCH_CHECK(config.is_object() && config.contains("type") && config["type"].is_string(),
                "a JSON encoding configuration must be an object with a string \"type\", got ",
                text);
    return config;
  }
  // names, keys and values are ASCII; anything else (found by fuzzing: invalid UTF-8) would
  // only fail later, when a message quotes it as JSON
  for (size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    TORCH_CHECK(byte >= 0x20 && byte < 0x7f,
                "encoding spec has a byte that is not printable "
                "ASCII (0x",
                std::hex, static_cast<int>(byte), std::dec, " at position ", i,
                "); expected NAME or NAME:KEY=VALUE,...");
  }
  const auto colon = text.find(':');
  const std::string name = trim(text.substr(0, colon));
  TORCH_CHECK(!name.empty(), "encoding spec '", spec,
              "' has no encoding name; expected NAME or NAME:KEY=VALUE,... (e.g. "
              "lff:F=64,H=32,gamma=10)");
  nlohmann::json config = {{"type", name}};
  if (colon == std::string::npos)
    return config;

  std::stringstream assignments(text.substr(colon + 1));
  std::string assignment;
  while (std::getline(assignments, assignment, ',')) {
    const auto equals = assignment.find('=');
    TORCH_CHECK(equals != std::string::npos, "encoding spec '", spec, "': '", assignment,
                "' is not KEY=VALUE");
    const std::string key = trim(assignment.substr(0, equals));
    const std::string value = trim(assignment.substr(equals + 1));
    TORCH_CHECK(!key.empty() && !value.empty(), "encoding spec '", spec, "': '", assignment,
                "' needs both a key and a value (KEY=VALUE)");
    TORCH_CHECK(key != "type" && !config.contains(key), "encoding spec '", spec, "': key '", key,
                "' is given twice");
    config[key] = parse_value(value);
  }
  TORCH_CHECK(text.back() != ',', "encoding spec '", spec, "' ends with ','; remove it");
  return config;
}

std::string format_encoding_spec(const nlohmann::json& config) {
  TORCH_CHECK(config.is_object() && config.contains("type"),
              "an encoding configuration needs a \"type\", got ", config.dump());
  std::string text = config.at("type").get<std::string>();
  char separator = ':';
  for (const auto& [key, value] : config.items()) {
    if (key == "type")
      continue;
    text += separator + key + "=" + (value.is_string() ? value.get<std::string>() : value.dump());
    separator = ',';
  }
  return text;
}

}  // namespace posenc
