#include "posenc/kernels/kernel_settings.h"

#include <c10/util/Exception.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "kernels/simd_kernels.h"

namespace posenc {
namespace {

// Environment overrides are read once, the first time a kernel asks.
std::optional<SimdLevel> simd_override_from_environment() {
  const char* value = std::getenv("POSENC_SIMD");
  if (value == nullptr || *value == '\0')
    return std::nullopt;
  const SimdLevel level = parse_simd_level(value);
  TORCH_CHECK(level <= supported_simd_level(), "POSENC_SIMD=", value,
              " asks for an instruction set this CPU does not have; it supports up to ",
              to_string(supported_simd_level()));
  return level;
}

SimdLevel& current_simd_level() {
  static SimdLevel level = simd_override_from_environment().value_or(supported_simd_level());
  return level;
}

bool& current_fused_kernels() {
  static bool enabled = [] {
    const char* value = std::getenv("POSENC_KERNELS");
    if (value == nullptr || *value == '\0' || std::strcmp(value, "fused") == 0)
      return true;
    TORCH_CHECK(std::strcmp(value, "reference") == 0, "POSENC_KERNELS must be 'fused' or ",
                "'reference' (the composite LibTorch path), got '", value, "'");
    return false;
  }();
  return enabled;
}

int64_t& current_streaming_threshold() {
  static int64_t bytes = [] {
    constexpr int64_t kDefault = int64_t{4} << 20;
    const char* value = std::getenv("POSENC_STREAM_BYTES");
    if (value == nullptr || *value == '\0')
      return kDefault;
    char* end = nullptr;
    errno = 0;
    const long long parsed = std::strtoll(value, &end, 10);
    TORCH_CHECK(errno == 0 && *end == '\0' && parsed >= 0,
                "POSENC_STREAM_BYTES must be a non-negative number of bytes (outputs at least that ",
                "large are written around the caches; 0 = all), got '", value, "'");
    return static_cast<int64_t>(parsed);
  }();
  return bytes;
}

}  // namespace

std::string to_string(SimdLevel level) {
  switch (level) {
    case SimdLevel::Scalar:
      return "scalar";
    case SimdLevel::Avx2:
      return "avx2";
    case SimdLevel::Avx512:
      return "avx512";
  }
  return "unknown";
}

SimdLevel parse_simd_level(const std::string& name) {
  for (SimdLevel level : {SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512})
    if (name == to_string(level))
      return level;
  TORCH_CHECK(false, "unknown SIMD level '", name, "'; use scalar, avx2 or avx512");
}

SimdLevel supported_simd_level() {
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return SimdLevel::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return SimdLevel::Avx2;
#endif
  return SimdLevel::Scalar;
}

SimdLevel active_simd_level() {
  return current_simd_level();
}

ScopedSimdLevel::ScopedSimdLevel(SimdLevel level) : previous_(current_simd_level()) {
  TORCH_CHECK(level <= supported_simd_level(), "cannot use ", to_string(level),
              " kernels: this CPU supports up to ", to_string(supported_simd_level()));
  current_simd_level() = level;
}

ScopedSimdLevel::~ScopedSimdLevel() {
  current_simd_level() = previous_;
}

bool fused_kernels_enabled() {
  return current_fused_kernels();
}

ScopedKernelPath::ScopedKernelPath(bool use_fused_kernels) : previous_(current_fused_kernels()) {
  current_fused_kernels() = use_fused_kernels;
}

ScopedKernelPath::~ScopedKernelPath() {
  current_fused_kernels() = previous_;
}

int64_t streaming_threshold_bytes() {
  return current_streaming_threshold();
}

ScopedStreamingThreshold::ScopedStreamingThreshold(int64_t bytes)
    : previous_(current_streaming_threshold()) {
  TORCH_CHECK(bytes >= 0, "streaming threshold must be non-negative, got ", bytes);
  current_streaming_threshold() = bytes;
}

ScopedStreamingThreshold::~ScopedStreamingThreshold() {
  current_streaming_threshold() = previous_;
}

namespace {
std::atomic<int64_t> streamed_rows{0};
}  // namespace

int64_t streamed_peg_rows() {
  return streamed_rows.load(std::memory_order_relaxed);
}

void kernels::count_streamed_row() {
  streamed_rows.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace posenc
