// docs/encodings.md is the one page that lists every option: it must not fall behind the registry.
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "posenc/encoding_registry.h"

namespace posenc {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream file(path);
  EXPECT_TRUE(file.good()) << "cannot read " << path;
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

std::string as_text(const nlohmann::json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

TEST(Documentation, EncodingsPageListsEveryEncodingOptionAndDefault) {
  const std::string page = read_file(POSENC_SOURCE_DIR "/docs/encodings.md");
  for (const auto& definition : registered_encodings()) {
    const auto section_start = page.find("\n## " + definition.name + "\n");
    ASSERT_NE(section_start, std::string::npos) << "no section for " << definition.name;
    const auto section_end = page.find("\n## ", section_start + 1);
    const std::string section = page.substr(section_start, section_end - section_start);
    for (const auto& option : definition.options) {
      const std::string row_start = "| " + option.key + " | ";
      const auto row = section.find(row_start);
      ASSERT_NE(row, std::string::npos) << definition.name << ": no row for " << option.key;
      const std::string line = section.substr(row, section.find('\n', row) - row);
      EXPECT_NE(line.find("| " + as_text(option.default_value) + " |"), std::string::npos)
          << definition.name << "." << option.key << ": documented default differs from "
          << as_text(option.default_value) << " in: " << line;
    }
  }
}

}  // namespace
}  // namespace posenc
