// The build reports the BLAS it runs on, and warns loudly about the reference BLAS.
#include <gtest/gtest.h>

#include "posenc/system_info.h"

namespace posenc {
namespace {

TEST(SystemInfo, FindsTheBlasLibraryLibTorchCalls) {
  const auto blas = detect_blas();
  EXPECT_NE(blas.kind, BlasKind::Unknown);
  EXPECT_FALSE(blas.library_path.empty());
}

TEST(SystemInfo, WarnsWithTheFixOnlyForTheReferenceBlas) {
  const std::string warning =
      blas_warning({BlasKind::Reference, "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3"});
  EXPECT_NE(warning.find("80x slower"), std::string::npos);
  EXPECT_NE(warning.find("libopenblas0-openmp"), std::string::npos);
  EXPECT_TRUE(
      blas_warning({BlasKind::OpenBlas, "/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3"})
          .empty());
}

}  // namespace
}  // namespace posenc
