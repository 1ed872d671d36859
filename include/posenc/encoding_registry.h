#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "posenc/encoding_options.h"
#include "posenc/positional_encoding.h"

namespace posenc {

// Everything the registry knows about one encoding: its name, a one-line summary, its options
// (with defaults and help) and how to build it.
struct EncodingDefinition {
  std::string name;
  std::string summary;
  std::vector<OptionSpec> options;
  std::function<std::shared_ptr<PositionalEncodingImpl>(const EncodingOptions&,
                                                        const EncodingContext&)>
      create;
};

// The definition of an encoding class constructible from (options, context).
template <typename Encoding>
EncodingDefinition define_encoding(std::string name, std::string summary,
                                   std::vector<OptionSpec> options) {
  return {std::move(name), std::move(summary), std::move(options),
          [](const EncodingOptions& resolved, const EncodingContext& context) {
            return std::make_shared<Encoding>(resolved, context);
          }};
}

// Every registered encoding, in registration order (src/encodings/registered_encodings.inc).
const std::vector<EncodingDefinition>& registered_encodings();

// Throws, listing the registered names, when `name` is unknown.
const EncodingDefinition& find_encoding(const std::string& name);

// Builds an encoding from a JSON object {"type": "lff", "F": 64, ...}. Unknown types or keys,
// wrong value types and invalid values throw with the valid alternatives in the message.
PositionalEncoding make_encoding(const nlohmann::json& config, const EncodingContext& context);

// Same from text: a JSON object, or the compact command-line form "lff:F=64,H=32,gamma=10".
PositionalEncoding make_encoding(const std::string& spec, const EncodingContext& context);
inline PositionalEncoding make_encoding(const char* spec, const EncodingContext& context) {
  return make_encoding(std::string(spec), context);
}

}  // namespace posenc
