#include "posenc/encoding_registry.h"

#include <c10/util/Exception.h>

#include "posenc/encoding_spec.h"

namespace posenc {

#define POSENC_ENCODING(name) EncodingDefinition name##_definition();
#include "encodings/registered_encodings.inc"
#undef POSENC_ENCODING

const std::vector<EncodingDefinition>& registered_encodings() {
  static const std::vector<EncodingDefinition> all = {
#define POSENC_ENCODING(name) name##_definition(),
#include "encodings/registered_encodings.inc"
#undef POSENC_ENCODING
  };
  return all;
}

const EncodingDefinition& find_encoding(const std::string& name) {
  std::string names;
  for (const auto& definition : registered_encodings()) {
    if (definition.name == name)
      return definition;
    names += (names.empty() ? "" : ", ") + definition.name;
  }
  TORCH_CHECK(false, "unknown encoding '", name, "'; registered encodings: ", names);
}

PositionalEncoding make_encoding(const nlohmann::json& config, const EncodingContext& context) {
  TORCH_CHECK(config.is_object() && config.contains("type") && config["type"].is_string(),
              "an encoding configuration must be a JSON object with a string \"type\", got ",
              config.dump());
  const auto& definition = find_encoding(config["type"].get<std::string>());
  context.validate();
  const EncodingOptions options(definition.name, definition.options, config);
  return PositionalEncoding(definition.create(options, context));
}

PositionalEncoding make_encoding(const std::string& spec, const EncodingContext& context) {
  return make_encoding(parse_encoding_spec(spec), context);
}

}  // namespace posenc
