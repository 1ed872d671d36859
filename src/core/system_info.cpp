#include "posenc/system_info.h"

#include <dlfcn.h>
#include <sched.h>

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <climits>
#include <cstdlib>

namespace posenc {

BlasInfo detect_blas() {
  BlasInfo info;
  // LibTorch resolves sgemm_ from whichever libblas.so.3 the loader found; ask the loader which.
  void* sgemm = dlsym(RTLD_DEFAULT, "sgemm_");
  Dl_info where{};
  if (sgemm == nullptr || dladdr(sgemm, &where) == 0 || where.dli_fname == nullptr)
    return info;
  char resolved[PATH_MAX];
  info.library_path = realpath(where.dli_fname, resolved) ? resolved : where.dli_fname;
  const auto& path = info.library_path;
  if (path.find("openblas") != std::string::npos) {
    info.kind = BlasKind::OpenBlas;
  } else if (path.find("/blas/libblas.so") != std::string::npos) {  // Debian's reference BLAS
    info.kind = BlasKind::Reference;
  } else {
    info.kind = BlasKind::Other;
  }
  return info;
}

std::string blas_warning(const BlasInfo& blas) {
  if (blas.kind != BlasKind::Reference)
    return "";
  return "WARNING: LibTorch is using the reference BLAS (" + blas.library_path +
         ").\n"
         "WARNING: matrix products run about 80x slower than with OpenBLAS.\n"
         "WARNING: fix: sudo apt-get install libopenblas0-openmp  (or run "
         "scripts/install-deps.sh)\n";
}

int available_cores() {
  cpu_set_t mask;
  if (sched_getaffinity(0, sizeof(mask), &mask) != 0)
    return 1;
  return std::max(1, CPU_COUNT(&mask));
}

int configure_threads(int requested) {
  int threads = requested;
  if (threads <= 0) {
    const char* from_environment = std::getenv("OMP_NUM_THREADS");
    threads = from_environment != nullptr ? std::atoi(from_environment) : 0;
    TORCH_CHECK(from_environment == nullptr || threads > 0,
                "OMP_NUM_THREADS must be a positive "
                "integer, got '",
                from_environment, "'");
  }
  if (threads <= 0)
    threads = available_cores();
  at::set_num_threads(threads);
  return threads;
}

}  // namespace posenc
