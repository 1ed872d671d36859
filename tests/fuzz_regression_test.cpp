// The fuzz targets (fuzz/fuzz_targets.cpp) on their seed corpus and on every input that once
// made them fail (fuzz/regressions/<target>/): each must end in a result or a clear error, and
// soon.
#include <chrono>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "fuzz_targets.h"

namespace posenc {
namespace {

namespace fs = std::filesystem;

TEST(FuzzRegressions, EverySeedAndEveryPastFindingEndsInAResultOrAClearError) {
  int inputs = 0;
  for (const auto& target : fuzz::fuzz_targets()) {
    for (const char* kind : {"corpus", "regressions"}) {
      const fs::path folder = fs::path(POSENC_SOURCE_DIR) / "fuzz" / kind / target.name;
      if (!fs::is_directory(folder))
        continue;
      for (const auto& entry : fs::directory_iterator(folder)) {
        std::ifstream file(entry.path(), std::ios::binary);
        const std::string bytes{std::istreambuf_iterator<char>(file), {}};
        const auto started = std::chrono::steady_clock::now();
        EXPECT_NO_THROW(target.run(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()))
            << target.name << " on " << entry.path();
        // a hang is a finding too: each of these inputs takes milliseconds when handled well
        EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
                  10.0)
            << target.name << " on " << entry.path();
        ++inputs;
      }
    }
  }
  EXPECT_GE(inputs, 20) << "the seed corpus is missing";
}

}  // namespace
}  // namespace posenc
