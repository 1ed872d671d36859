#pragma once

#include <string>

#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>

namespace posenc {

// Throws unless `given` is a JSON object whose keys all appear in `defaults` (the to_json() of a
// default-constructed options struct); the message names the unknown key and lists the valid ones,
// so a typo in a config file is an error instead of a silently ignored setting.
void check_known_keys(const nlohmann::json& given, const nlohmann::json& defaults,
                      const std::string& what);

// Throws unless each value of `given` (whose keys check_known_keys accepted) has the type of its
// default in `defaults`: the message names the key and the type it takes. An integer setting
// given 2.7 is an error, not 2; a non-negative one given -1 is an error, not 2^64 - 1.
void check_value_types(const nlohmann::json& given, const nlohmann::json& defaults,
                       const std::string& what);

// The typed JSON of an options struct is declared once, beside its to_json/from_json, with
//   NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Options, field, field, ...)
// which writes every field under its own name and reads missing ones as the defaults; its
// to_json() is nlohmann::json(*this) (plus any nested options struct, written by its own
// to_json()) and its from_json() this: keys that Options{}.to_json() lacks are an error listing
// the valid ones, a value of the wrong type an error naming `what`. The caller reads nested
// options structs with their own from_json() and validates.
template <typename Options>
Options read_options_json(const nlohmann::json& json, const std::string& what) {
  const nlohmann::json defaults = Options{}.to_json();
  check_known_keys(json, defaults, what);
  check_value_types(json, defaults, what);
  try {
    return json.get<Options>();
  } catch (const nlohmann::json::exception& error) {
    TORCH_CHECK(false, what, " options have a value of the wrong type: ", error.what());
  }
}

}  // namespace posenc
