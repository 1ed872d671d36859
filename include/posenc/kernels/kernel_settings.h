#pragma once

#include <cstdint>
#include <string>

namespace posenc {

// Instruction sets posenc's fused CPU kernels are compiled for, widest last.
enum class SimdLevel { Scalar, Avx2, Avx512 };

std::string to_string(SimdLevel level);
// "scalar", "avx2" or "avx512"; throws naming the valid values otherwise.
SimdLevel parse_simd_level(const std::string& name);

// The widest level this CPU runs (AVX2 needs FMA too; AVX-512 needs F, BW, DQ and VL).
SimdLevel supported_simd_level();

// The level the kernels use now: supported_simd_level(), lowered by the environment variable
// POSENC_SIMD=scalar|avx2 (read once) or by a ScopedSimdLevel.
SimdLevel active_simd_level();

// Forces a SIMD level for the lifetime of the object (tests, benchmarks); the previous level comes
// back when it is destroyed. Throws when the CPU does not support `level`.
// Not thread-safe: set it before starting work that uses the kernels.
class ScopedSimdLevel {
 public:
  explicit ScopedSimdLevel(SimdLevel level);
  ~ScopedSimdLevel();
  ScopedSimdLevel(const ScopedSimdLevel&) = delete;
  ScopedSimdLevel& operator=(const ScopedSimdLevel&) = delete;

 private:
  SimdLevel previous_;
};

// Whether encodings run posenc's fused kernels where they apply (float32 on the CPU). True unless
// the environment variable POSENC_KERNELS=reference is set or a ScopedKernelPath says otherwise;
// the reference path is the composite of LibTorch ops that the kernels are tested against.
bool fused_kernels_enabled();

// Chooses fused kernels (true) or the composite reference path (false) for the lifetime of the
// object. Not thread-safe, like ScopedSimdLevel.
class ScopedKernelPath {
 public:
  explicit ScopedKernelPath(bool use_fused_kernels);
  ~ScopedKernelPath();
  ScopedKernelPath(const ScopedKernelPath&) = delete;
  ScopedKernelPath& operator=(const ScopedKernelPath&) = delete;

 private:
  bool previous_;
};

// The PEG kernel writes outputs (and input gradients) of at least this many bytes with
// non-temporal stores, around the caches: a tensor that large would be evicted before it is read
// again, and streaming it saves the read that a cached write costs. 4 MiB (twice the L2 caches of
// the 2-core machine it was measured on; see docs/kernels.md) unless the environment variable
// POSENC_STREAM_BYTES=<bytes> (read once) or a ScopedStreamingThreshold says otherwise.
int64_t streaming_threshold_bytes();

// Sets the streaming threshold for the lifetime of the object (tests, benchmarks); 0 streams every
// output. Not thread-safe, like ScopedSimdLevel.
class ScopedStreamingThreshold {
 public:
  explicit ScopedStreamingThreshold(int64_t bytes);
  ~ScopedStreamingThreshold();
  ScopedStreamingThreshold(const ScopedStreamingThreshold&) = delete;
  ScopedStreamingThreshold& operator=(const ScopedStreamingThreshold&) = delete;

 private:
  int64_t previous_;
};

// How many grid rows the PEG kernel has written through its streaming path (forward outputs and
// input gradients) since the process started: lets a test tell that a store streamed.
int64_t streamed_peg_rows();

}  // namespace posenc
