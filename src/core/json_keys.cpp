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

}  // namespace posenc
