#include "posenc/data/token_sets_jsonl.h"

#include <cmath>
#include <fstream>
#include <sstream>
#include <vector>

#include <c10/util/Exception.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

namespace posenc {
namespace {

// One parsed line before padding.
struct ParsedSet {
  std::vector<float> positions;  // K x G x M
  std::vector<float> content;    // K x D
  std::vector<int64_t> targets;  // K
};

// The shape every line must share; -1 until the first line sets it.
struct SetShape {
  int64_t groups = -1, values = -1, content_dim = -1;
};

class LineReader {
 public:
  LineReader(std::string source, int64_t line) : where_(source + " line " + std::to_string(line)) {}

  [[noreturn]] void fail(const std::string& what) const { TORCH_CHECK(false, where_, ": ", what); }

  float number(const nlohmann::json& value, const std::string& what) const {
    if (!value.is_number())
      fail(what + " must be a number, got " + value.dump());
    const double number = value.get<double>();
    if (!std::isfinite(number) || std::abs(number) > 3.0e38)
      fail(what + " is not a finite float32 number: " + value.dump());
    return static_cast<float>(number);
  }

  const nlohmann::json& array(const nlohmann::json& value, const std::string& what) const {
    if (!value.is_array())
      fail(what + " must be an array, got " + value.dump().substr(0, 80));
    return value;
  }

  // Reads `value` into `out` as an array of exactly `expected` numbers (any count if -1) and
  // returns the count.
  int64_t numbers(const nlohmann::json& value, int64_t expected, const std::string& what,
                  std::vector<float>& out) const {
    const auto& items = array(value, what);
    const auto count = static_cast<int64_t>(items.size());
    if (expected >= 0 && count != expected) {
      fail(what + " has " + std::to_string(count) + " numbers where the file's first set has " +
           std::to_string(expected));
    }
    for (size_t i = 0; i < items.size(); ++i)
      out.push_back(number(items[i], what + "[" + std::to_string(i) + "]"));
    return count;
  }

 private:
  std::string where_;
};

ParsedSet parse_line(const std::string& line, const LineReader& reader, SetShape& shape) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& error) {  // syntax, or a number out of range
    reader.fail(std::string("not valid JSON (") + error.what() + ")");
  }
  if (!json.is_object())
    reader.fail("expected a JSON object with positions, content and targets");
  for (const auto& item : json.items()) {
    if (item.key() != "positions" && item.key() != "content" && item.key() != "targets")
      reader.fail("unknown key '" + item.key() + "'; a set has positions, content and targets");
  }
  for (const char* key : {"positions", "content", "targets"}) {
    if (!json.contains(key))
      reader.fail(std::string("missing '") + key + "'");
  }
  const auto& positions = reader.array(json["positions"], "positions");
  const auto& content = reader.array(json["content"], "content");
  const auto& targets = reader.array(json["targets"], "targets");
  const auto tokens = positions.size();
  if (tokens == 0)
    reader.fail("the set is empty: give at least one token");
  if (content.size() != tokens || targets.size() != tokens) {
    reader.fail("positions, content and targets must have one entry per token; got " +
                std::to_string(tokens) + ", " + std::to_string(content.size()) + " and " +
                std::to_string(targets.size()));
  }
  ParsedSet set;
  for (size_t k = 0; k < tokens; ++k) {
    const std::string token = "token " + std::to_string(k) + ": ";
    const auto& position = reader.array(positions[k], token + "position");
    // a flat array of numbers is one group; an array of arrays is G groups
    const bool grouped = !position.empty() && position[0].is_array();
    const auto groups = grouped ? static_cast<int64_t>(position.size()) : 1;
    if (shape.groups >= 0 && groups != shape.groups) {
      reader.fail(token + "position has " + std::to_string(groups) +
                  " groups where the file's first set has " + std::to_string(shape.groups));
    }
    shape.groups = groups;
    for (int64_t g = 0; g < groups; ++g) {
      const auto& values = grouped ? position[static_cast<size_t>(g)] : position;
      shape.values = reader.numbers(values, shape.values,
                                    token + "position group " + std::to_string(g), set.positions);
    }
    if (shape.values == 0)
      reader.fail(token + "a position needs at least one value");
    shape.content_dim =
        reader.numbers(content[k], shape.content_dim, token + "content", set.content);
    if (shape.content_dim == 0)
      reader.fail(token + "content needs at least one number");
    const auto& target = targets[k];
    if (target.is_null()) {
      set.targets.push_back(-1);
    } else if (target.is_number_integer() && target.get<int64_t>() >= -1 &&
               target.get<int64_t>() < (int64_t{1} << 31)) {
      set.targets.push_back(target.get<int64_t>());
    } else {
      reader.fail(token + "target must be a class >= 0, or -1 or null for none; got " +
                  target.dump());
    }
  }
  bool any_target = false;
  for (const auto target : set.targets)
    any_target = any_target || target >= 0;
  if (!any_target)
    reader.fail("no token of the set has a target");
  return set;
}

}  // namespace

TokenSets parse_token_sets_jsonl(const std::string& text, const std::string& source_name) {
  std::istringstream stream(text);
  std::string line;
  std::vector<ParsedSet> sets;
  SetShape shape;
  int64_t line_number = 0, max_tokens = 0, max_target = -1;
  while (std::getline(stream, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos)
      continue;
    sets.push_back(parse_line(line, LineReader(source_name, line_number), shape));
    max_tokens = std::max<int64_t>(max_tokens, static_cast<int64_t>(sets.back().targets.size()));
    for (const auto target : sets.back().targets)
      max_target = std::max(max_target, target);
  }
  TORCH_CHECK(!sets.empty(), source_name,
              " holds no token sets; write one JSON object per line "
              "(see docs/point_sets.md)");
  const auto count = static_cast<int64_t>(sets.size());
  TokenSets data;
  data.content = torch::zeros({count, max_tokens, shape.content_dim}, torch::kFloat32);
  data.positions = torch::zeros({count, max_tokens, shape.groups, shape.values}, torch::kFloat32);
  data.targets = torch::full({count, max_tokens}, -1, torch::kLong);
  data.mask = torch::zeros({count, max_tokens}, torch::kBool);
  data.classes = std::max<int64_t>(2, max_target + 1);
  for (int64_t s = 0; s < count; ++s) {
    const auto& set = sets[static_cast<size_t>(s)];
    const auto tokens = static_cast<int64_t>(set.targets.size());
    data.positions[s]
        .narrow(0, 0, tokens)
        .copy_(torch::tensor(set.positions).view({tokens, shape.groups, shape.values}));
    data.content[s]
        .narrow(0, 0, tokens)
        .copy_(torch::tensor(set.content).view({tokens, shape.content_dim}));
    data.targets[s].narrow(0, 0, tokens).copy_(torch::tensor(set.targets));
    data.mask[s].narrow(0, 0, tokens).fill_(true);
  }
  data.validate(source_name);
  return data;
}

TokenSets read_token_sets_jsonl(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  TORCH_CHECK(file.good(), "cannot read token sets from ", path, ": no such file or not readable");
  std::ostringstream text;
  text << file.rdbuf();
  TORCH_CHECK(!file.bad(), "reading ", path, " failed");
  return parse_token_sets_jsonl(text.str(), path);
}

}  // namespace posenc
