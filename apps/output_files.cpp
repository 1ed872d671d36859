#include "output_files.h"

#include <filesystem>
#include <system_error>

#include <c10/util/Exception.h>

namespace posenc::cli {

namespace fs = std::filesystem;

void prepare_output_file(const std::string& out, bool force,
                         const std::vector<std::string>& inputs, const char* flag) {
  std::error_code error;
  const bool exists = fs::exists(out, error);
  for (const auto& input : inputs) {
    TORCH_CHECK(!(exists && fs::equivalent(out, input, error)), flag, " ", out, " is the input ",
                input, ": writing it would destroy what is being read; choose another ", flag);
  }
  TORCH_CHECK(!exists || force, out, " already exists; choose another ", flag,
              ", or pass --force to replace it");
  TORCH_CHECK(!exists || !fs::is_directory(out, error), out, " is a folder; ", flag,
              " names the file to write");
  const auto folder = fs::path(out).parent_path();
  if (!folder.empty()) {
    fs::create_directories(folder, error);
    TORCH_CHECK(!error, "cannot create the folder ", folder.string(), " for ", flag, ": ",
                error.message());
  }
}

}  // namespace posenc::cli
