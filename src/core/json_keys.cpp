#include "core/json_keys.h"

#include <c10/util/Exception.h>

namespace posenc {

void check_known_keys(const nlohmann::json& given, const nlohmann::json& defaults,
                      const std::string& what) {
  TORCH_CHECK(given.is_object(), what, " must be a JSON object, got ", given.dump());
  for (const auto& item : given.items()) {
    if (defaults.contains(item.key()))
      continue;
    std::string keys;
    for (const auto& field : defaults.items())
      keys += (keys.empty() ? "" : ", ") + field.key();
    TORCH_CHECK(false, "unknown ", what, " option '", item.key(), "'; valid options: ", keys);
  }
}

namespace {

// What a value of the type of `model` is, for an error: "an integer".
const char* kind_of(const nlohmann::json& model) {
  if (model.is_boolean())
    return "true or false";
  if (model.is_number_unsigned())
    return "a non-negative integer";
  if (model.is_number_integer())
    return "an integer";
  if (model.is_number())
    return "a number";
  if (model.is_string())
    return "a string";
  return model.is_array() ? "a list" : "an object";
}

bool same_kind(const nlohmann::json& value, const nlohmann::json& model) {
  if (model.is_number_unsigned())
    return value.is_number_unsigned() || (value.is_number_integer() && value.get<int64_t>() >= 0);
  if (model.is_number_integer())
    return value.is_number_integer();  // 2.7 epochs would be read as 2
  if (model.is_number())
    return value.is_number();
  return value.type() == model.type();
}

}  // namespace

void check_value_types(const nlohmann::json& given, const nlohmann::json& defaults,
                       const std::string& what) {
  for (const auto& item : given.items()) {
    const auto& model = defaults.at(item.key());
    // null: an optional without a default value; lists and objects are read by their own type
    if (model.is_null() || model.is_object() || (model.is_array() && item.value().is_array()))
      continue;
    TORCH_CHECK(same_kind(item.value(), model), what, " option '", item.key(), "' takes ",
                kind_of(model), ", got ", item.value().dump());
  }
}

}  // namespace posenc
