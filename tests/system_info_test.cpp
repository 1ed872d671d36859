// The build reports the LibTorch it runs on and the libraries inside it, and runs on one OpenMP
// runtime (LibTorch's) with no second oneDNN beside LibTorch's.
#include <gtest/gtest.h>

#include <torch/version.h>

#include <cstdlib>
#include <filesystem>

#include "posenc/system_info.h"

namespace posenc {
namespace {

TEST(SystemInfo, NamesTheLibTorchItWasBuiltAgainstAndRunsOn) {
  const auto libraries = detect_libraries();
  EXPECT_EQ(libraries.built_against, TORCH_VERSION);
  EXPECT_EQ(libraries.running_on, libraries.built_against);
  EXPECT_NE(libraries.libtorch_path.find("libtorch_cpu"), std::string::npos)
      << libraries.libtorch_path;
  EXPECT_FALSE(libraries.blas.empty());
  EXPECT_FALSE(libraries.onednn.empty());
}

TEST(SystemInfo, LoadsOnlyLibTorchsOpenMpRuntimeAndNoSecondOneDnn) {
  const auto libraries = detect_libraries();
  ASSERT_EQ(libraries.openmp_runtimes.size(), 1U)
      << "first: " << (libraries.openmp_runtimes.empty() ? "" : libraries.openmp_runtimes[0]);
  const auto libtorch_folder = std::filesystem::path(libraries.libtorch_path).parent_path();
  EXPECT_EQ(std::filesystem::path(libraries.openmp_runtimes[0]).parent_path(), libtorch_folder);
  EXPECT_TRUE(libraries.separate_onednn_libraries.empty());
  EXPECT_TRUE(library_warning(libraries).empty()) << library_warning(libraries);
}

TEST(SystemInfo, WarnsAboutAnotherLibTorchAndASecondRuntime) {
  LibraryInfo libraries;
  libraries.built_against = "2.13.0";
  libraries.running_on = "2.14.1";
  libraries.openmp_runtimes = {"/a/libgomp.so.1", "/b/libomp.so"};
  libraries.separate_onednn_libraries = {"/usr/lib/libdnnl.so.2"};
  const std::string warning = library_warning(libraries);
  EXPECT_NE(warning.find("built against LibTorch 2.13.0 but runs on LibTorch 2.14.1"),
            std::string::npos)
      << warning;
  EXPECT_NE(warning.find("2 OpenMP runtimes"), std::string::npos) << warning;
  EXPECT_NE(warning.find("/usr/lib/libdnnl.so.2"), std::string::npos) << warning;
}

// glibc's malloc keeps freed blocks for reuse unless the user tuned it or opted out.
TEST(SystemInfo, KeepsFreedMemoryForReuseUnlessTheUserTunedMalloc) {
  ASSERT_EQ(unsetenv("POSENC_MALLOC_TUNING"), 0);
  ASSERT_EQ(setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2", 1), 0);
  EXPECT_NE(configure_memory_allocator().find("as the user set it (GLIBC_TUNABLES)"),
            std::string::npos);
  ASSERT_EQ(unsetenv("GLIBC_TUNABLES"), 0);
  ASSERT_EQ(setenv("POSENC_MALLOC_TUNING", "0", 1), 0);
  EXPECT_NE(configure_memory_allocator().find("POSENC_MALLOC_TUNING=0"), std::string::npos);
  ASSERT_EQ(unsetenv("POSENC_MALLOC_TUNING"), 0);
  const auto setting = configure_memory_allocator();
  EXPECT_EQ(memory_allocator_setting(), setting);
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POSENC_TEST_UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define POSENC_TEST_UNDER_ASAN 1
#endif
#if defined(POSENC_TEST_UNDER_ASAN)
  // AddressSanitizer's allocator replaces malloc and refuses mallopt: said so, nothing changed
  EXPECT_NE(setting.find("mallopt refused"), std::string::npos) << setting;
#elif defined(__GLIBC__)
  EXPECT_NE(setting.find("kept for reuse (mmap threshold 1 GiB"), std::string::npos) << setting;
#endif
}

}  // namespace
}  // namespace posenc
