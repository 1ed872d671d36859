#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace posenc {

// Parses the compact command-line form of an encoding configuration:
//   "lff:F=64,H=32,gamma=10"  ->  {"type": "lff", "F": 64, "H": 32, "gamma": 10}
//   "peg"                     ->  {"type": "peg"}
// Values read as integers, then numbers, then true/false, else strings. Text that starts with '{'
// is parsed as a JSON object instead. Throws on an empty name, a missing '=', an empty key or
// value, or a key given twice.
nlohmann::json parse_encoding_spec(const std::string& spec);

// The compact form of a configuration: format_encoding_spec(parse_encoding_spec(s)) == s for
// compact specs whose keys are in sorted order.
std::string format_encoding_spec(const nlohmann::json& config);

}  // namespace posenc
