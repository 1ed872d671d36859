#include "argument_parsing.h"

#include <cmath>
#include <optional>
#include <sstream>

#include <c10/util/Exception.h>

namespace posenc::cli {
namespace {

// `convert` is std::stoll or std::stod: the number, if the whole text is one.
template <typename Number, typename Convert>
std::optional<Number> whole_number(const std::string& text, Convert convert) {
  size_t used = 0;
  Number value{};
  try {
    value = convert(text, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (text.empty() || used != text.size())
    return std::nullopt;
  return value;
}

std::optional<int64_t> whole_integer(const std::string& text) {
  return whole_number<int64_t>(
      text, [](const std::string& t, size_t* used) { return std::stoll(t, used); });
}
std::optional<double> whole_double(const std::string& text) {
  return whole_number<double>(
      text, [](const std::string& t, size_t* used) { return std::stod(t, used); });
}

int64_t parse_integer(const std::string& text, const std::string& context) {
  const auto value = whole_integer(text);
  TORCH_CHECK(value, "'", text, "' in '", context, "' is not an integer");
  return *value;
}

double parse_number(const std::string& text, const std::string& context) {
  const auto value = whole_double(text);
  TORCH_CHECK(value, "'", text, "' in '", context, "' is not a number");
  return *value;
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  for (std::string part; std::getline(stream, part, separator);)
    parts.push_back(part);
  return parts;
}

}  // namespace

int64_t parse_integer_value(const std::string& text, const std::string& option) {
  const auto value = whole_integer(text);
  TORCH_CHECK(value, option, " takes an integer, got '", text, "'");
  return *value;
}

uint64_t parse_non_negative_integer_value(const std::string& text, const std::string& option) {
  const auto value = whole_integer(text);
  TORCH_CHECK(value && *value >= 0, option, " takes a non-negative integer, got '", text, "'");
  return static_cast<uint64_t>(*value);
}

double parse_finite_number_value(const std::string& text, const std::string& option) {
  const auto value = whole_double(text);
  TORCH_CHECK(value && std::isfinite(*value), option, " takes a finite number, got '", text, "'");
  return *value;
}

std::vector<double> parse_number_list(const std::string& text) {
  std::vector<double> values;
  for (const auto& item : split(text, ','))
    values.push_back(parse_number(item, text));
  TORCH_CHECK(!values.empty(), "empty list '", text, "'");
  return values;
}

std::vector<int64_t> parse_integer_list(const std::string& text) {
  std::vector<int64_t> values;
  for (const auto& item : split(text, ','))
    values.push_back(parse_integer(item, text));
  TORCH_CHECK(!values.empty(), "empty list '", text, "'");
  return values;
}

std::vector<int64_t> parse_index_list(const std::string& text) {
  std::vector<int64_t> values;
  for (const auto& item : split(text, ',')) {
    // a dash after the first character is a range: "0-5", "-1-2"
    const auto dash = item.find('-', 1);
    if (dash == std::string::npos) {
      values.push_back(parse_integer(item, text));
      continue;
    }
    const int64_t first = parse_integer(item.substr(0, dash), text);
    const int64_t last = parse_integer(item.substr(dash + 1), text);
    TORCH_CHECK(first <= last, "range '", item, "' in '", text, "' runs backwards");
    for (int64_t value = first; value <= last; ++value)
      values.push_back(value);
  }
  TORCH_CHECK(!values.empty(), "empty list '", text, "'");
  return values;
}

std::vector<std::pair<int64_t, int64_t>> parse_resolutions(const std::string& text) {
  std::vector<std::pair<int64_t, int64_t>> resolutions;
  for (const auto& item : split(text, ',')) {
    const auto cross = item.find('x');
    const int64_t height = parse_integer(item.substr(0, cross), text);
    const int64_t width =
        cross == std::string::npos ? height : parse_integer(item.substr(cross + 1), text);
    TORCH_CHECK(height >= 1 && width >= 1, "resolution '", item, "' must be positive");
    resolutions.emplace_back(height, width);
  }
  TORCH_CHECK(!resolutions.empty(), "empty resolution list '", text, "'");
  return resolutions;
}

std::pair<int64_t, int64_t> parse_single_resolution(const std::string& text,
                                                    std::pair<int64_t, int64_t> fallback,
                                                    const std::string& option) {
  if (text.empty())
    return fallback;
  const auto sizes = parse_resolutions(text);
  TORCH_CHECK(sizes.size() == 1, option, " takes one size such as 36 or 28x40, got '", text, "'");
  return sizes.front();
}

double parse_duration(const std::string& text) {
  TORCH_CHECK(!text.empty(), "empty duration; use e.g. 90s, 15m or 2h");
  double scale = 1.0;
  std::string number = text;
  switch (text.back()) {
    case 's':
      number.pop_back();
      break;
    case 'm':
      scale = 60.0;
      number.pop_back();
      break;
    case 'h':
      scale = 3600.0;
      number.pop_back();
      break;
    default:
      break;
  }
  size_t used = 0;
  double value = -1.0;
  try {
    value = std::stod(number, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  TORCH_CHECK(used == number.size() && !number.empty() && value >= 0.0, "'", text,
              "' is not a duration; use e.g. 90s, 15m or 2h");
  return value * scale;
}

}  // namespace posenc::cli
