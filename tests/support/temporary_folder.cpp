#include "support/temporary_folder.h"

#include <zlib.h>

#include <fstream>
#include <random>

namespace posenc::testing {

TemporaryFolder::TemporaryFolder() {
  std::random_device device;
  root_ = std::filesystem::temp_directory_path() / ("posenc-test-" + std::to_string(device()));
  std::filesystem::create_directories(root_);
}

TemporaryFolder::~TemporaryFolder() {
  std::error_code ignored;
  std::filesystem::remove_all(root_, ignored);
}

std::string TemporaryFolder::path(const std::string& name) const {
  return name.empty() ? root_.string() : (root_ / name).string();
}

void write_idx_file(const std::string& path, const std::vector<int32_t>& dims,
                    const std::vector<uint8_t>& bytes, bool gzip) {
  std::string data = {0, 0, 0x08, static_cast<char>(dims.size())};
  for (int32_t dim : dims) {
    for (int shift = 24; shift >= 0; shift -= 8)
      data.push_back(static_cast<char>((dim >> shift) & 0xFF));
  }
  data.append(bytes.begin(), bytes.end());
  if (!gzip) {
    write_bytes(path, data);
    return;
  }
  gzFile file = gzopen(path.c_str(), "wb");
  gzwrite(file, data.data(), static_cast<unsigned>(data.size()));
  gzclose(file);
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream file(path, std::ios::binary);
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace posenc::testing
