#include "posenc/system_info.h"

#include <dlfcn.h>
#include <sched.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <torch/version.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

namespace posenc {

namespace {

// The text after `marker` on the line of at::show_config() that holds it, up to the first of
// `stops` or the end of the line.
std::string config_value(const std::string& config, const std::string& marker,
                         const std::string& stops = "") {
  const auto start = config.find(marker);
  if (start == std::string::npos)
    return "";
  const auto from = start + marker.size();
  const auto end = config.find_first_of(stops + "\n", from);
  return config.substr(from, end == std::string::npos ? std::string::npos : end - from);
}

std::string resolved(const std::string& path) {
  char buffer[PATH_MAX];
  return realpath(path.c_str(), buffer) != nullptr ? buffer : path;
}

// The shared objects mapped into this process whose file names start with one of `prefixes`.
std::vector<std::string> mapped_libraries(const std::vector<std::string>& prefixes) {
  std::vector<std::string> found;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    const auto slash = line.find('/');
    if (slash == std::string::npos)
      continue;
    const std::string path = line.substr(slash);
    const std::string name = path.substr(path.rfind('/') + 1);
    const bool wanted = name.find(".so") != std::string::npos &&
                        std::any_of(prefixes.begin(), prefixes.end(), [&](const auto& prefix) {
                          return name.rfind(prefix, 0) == 0;
                        });
    if (!wanted)
      continue;
    const std::string real = resolved(path);
    if (std::find(found.begin(), found.end(), real) == found.end())
      found.push_back(real);
  }
  return found;
}

}  // namespace

LibraryInfo detect_libraries() {
  LibraryInfo info;
  info.built_against = TORCH_VERSION;
  const std::string config = at::show_config();
  info.running_on = config_value(config, "TORCH_VERSION=", ",");
  const std::string mkl = config_value(config, "Math Kernel Library Version ", "-");
  info.blas = !mkl.empty() ? "Intel(R) oneAPI Math Kernel Library " + mkl
                           : config_value(config, "BLAS_INFO=", ",");
  info.onednn = config_value(config, "MKL-DNN v", " ");
  Dl_info where{};
  if (dladdr(reinterpret_cast<void*>(&at::show_config), &where) != 0 && where.dli_fname != nullptr)
    info.libtorch_path = resolved(where.dli_fname);
  info.openmp_runtimes = mapped_libraries({"libgomp", "libomp", "libiomp"});
  info.separate_onednn_libraries = mapped_libraries({"libdnnl", "libmkldnn"});
  return info;
}

std::string library_warning(const LibraryInfo& libraries) {
  std::string warning;
  if (!libraries.running_on.empty() && libraries.running_on != libraries.built_against)
    warning += "WARNING: posenc was built against LibTorch " + libraries.built_against +
               " but runs on LibTorch " + libraries.running_on + " (" + libraries.libtorch_path +
               "); rebuild posenc against the LibTorch you run.\n";
  if (libraries.openmp_runtimes.size() > 1) {
    warning += "WARNING: " + std::to_string(libraries.openmp_runtimes.size()) +
               " OpenMP runtimes are loaded (";
    for (size_t i = 0; i < libraries.openmp_runtimes.size(); ++i)
      warning += (i > 0 ? ", " : "") + libraries.openmp_runtimes[i];
    warning += "): threads oversubscribe and slow down; link only LibTorch's.\n";
  }
  for (const auto& library : libraries.separate_onednn_libraries)
    warning += "WARNING: a second oneDNN is loaded beside LibTorch's (" + library + ").\n";
  return warning;
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

namespace {

std::string& allocator_setting() {
  static std::string setting = "not configured";
  return setting;
}

}  // namespace

std::string configure_memory_allocator() {
  auto& setting = allocator_setting();
#if defined(__GLIBC__)
  const char* opt_out = std::getenv("POSENC_MALLOC_TUNING");
  if (opt_out != nullptr && std::string(opt_out) == "0")
    return setting = "glibc malloc as it is (POSENC_MALLOC_TUNING=0)";
  for (const char* variable : {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_",
                               "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_", "GLIBC_TUNABLES"}) {
    if (std::getenv(variable) != nullptr)
      return setting = std::string("glibc malloc as the user set it (") + variable + ")";
  }
  constexpr int kMmapThreshold = 1 << 30;  // larger blocks are still mapped and unmapped
  if (mallopt(M_MMAP_THRESHOLD, kMmapThreshold) != 1 ||
      mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max()) != 1)
    return setting = "glibc malloc as it is (mallopt refused the thresholds)";
  return setting = "glibc malloc, freed blocks kept for reuse (mmap threshold 1 GiB, no "
                   "trimming)";
#else
  return setting = "the C library's malloc as it is (not glibc)";
#endif
}

std::string memory_allocator_setting() {
  return allocator_setting();
}

}  // namespace posenc
