#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace posenc::testing {

// A fresh folder under the system temp directory, removed with everything in it on destruction.
class TemporaryFolder {
 public:
  TemporaryFolder();
  ~TemporaryFolder();
  TemporaryFolder(const TemporaryFolder&) = delete;
  TemporaryFolder& operator=(const TemporaryFolder&) = delete;

  std::string path(const std::string& name = "") const;

 private:
  std::filesystem::path root_;
};

// Writes an IDX ubyte file with the given dimensions and bytes, gzip-compressed if `gzip`.
void write_idx_file(const std::string& path, const std::vector<int32_t>& dims,
                    const std::vector<uint8_t>& bytes, bool gzip);

// Writes raw bytes to a file.
void write_bytes(const std::string& path, const std::string& bytes);

}  // namespace posenc::testing
