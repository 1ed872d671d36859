#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace posenc {

// Throws unless `given` is a JSON object whose keys all appear in `defaults` (the to_json() of a
// default-constructed options struct); the message names the unknown key and lists the valid ones,
// so a typo in a config file is an error instead of a silently ignored setting.
void check_known_keys(const nlohmann::json& given, const nlohmann::json& defaults,
                      const std::string& what);

}  // namespace posenc
