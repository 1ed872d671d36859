#pragma once

#include <string>

namespace posenc {

enum class BlasKind { OpenBlas, Reference, Other, Unknown };

struct BlasInfo {
  BlasKind kind = BlasKind::Unknown;
  std::string library_path;  // the shared object that provides sgemm_, symlinks resolved
};

// Finds which BLAS LibTorch calls (Debian's libtorch links whatever libblas.so.3 points at).
BlasInfo detect_blas();

// A loud, multi-line warning when the BLAS is the reference implementation (about 80x slower
// than OpenBLAS for matrix products), with the command that fixes it; empty otherwise.
std::string blas_warning(const BlasInfo& blas);

// CPU cores this process may run on (its affinity mask), at least 1.
int available_cores();

// Sets LibTorch's intra-op thread count and returns it: `requested` if positive, else
// OMP_NUM_THREADS if set, else every available core. Debian's LibTorch starts with 1 thread,
// so programs call this once at startup.
int configure_threads(int requested = 0);

}  // namespace posenc
