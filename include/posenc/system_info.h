#pragma once

#include <string>
#include <vector>

namespace posenc {

// The LibTorch this process runs on and the libraries inside it that posenc's kernels use.
struct LibraryInfo {
  std::string built_against;  // the LibTorch version posenc was compiled with, e.g. "2.13.0"
  std::string running_on;     // the version of the LibTorch loaded now (its build settings)
  std::string blas;           // LibTorch's BLAS, e.g. "Intel(R) oneAPI Math Kernel Library 2024.2"
  std::string onednn;         // the oneDNN inside LibTorch, e.g. "3.12.0"; empty if none
  std::string libtorch_path;  // the libtorch_cpu shared object, symlinks resolved
  // Every OpenMP runtime (libgomp, libomp, libiomp5) and every separate oneDNN shared object
  // mapped into this process: one runtime, LibTorch's, and no second oneDNN is the healthy state.
  std::vector<std::string> openmp_runtimes;
  std::vector<std::string> separate_onednn_libraries;
};

LibraryInfo detect_libraries();

// A warning when the LibTorch loaded is not the one posenc was built against (a C++ program
// pointed at another libtorch), or when a second OpenMP runtime or oneDNN is loaded; empty
// otherwise.
std::string library_warning(const LibraryInfo& libraries);

// CPU cores this process may run on (its affinity mask), at least 1.
int available_cores();

// Sets LibTorch's intra-op thread count and returns it: `requested` if positive, else
// OMP_NUM_THREADS if set, else every available core. Programs call this once at startup so that
// every command runs on the same number of threads whichever LibTorch it was built on.
int configure_threads(int requested = 0);

// glibc's malloc hands a freed block above its mmap threshold (128 KiB at first, raised as blocks
// are freed, at most 32 MiB by itself) back to the operating system, and trims the heap's free
// top: a training step, which allocates and frees the same activations every time, then pays
// for page faults and page zeroing on each step (docs/training.md, "Memory reuse"). This sets the
// mmap threshold to 1 GiB and turns trimming off, so that freed blocks are reused; the process
// keeps its peak memory until it exits. It keeps malloc as it is when the process runs without
// glibc, when the user tuned malloc themselves (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_,
// MALLOC_TOP_PAD_, MALLOC_MMAP_MAX_ or GLIBC_TUNABLES set) or when POSENC_MALLOC_TUNING=0. The
// library never calls it by itself: programs do, once at startup (posenc's own: the CLI and the
// benchmarks). It returns what it did, in words, which memory_allocator_setting() also returns.
std::string configure_memory_allocator();
// What configure_memory_allocator() did, or "not configured" before it ran.
std::string memory_allocator_setting();

}  // namespace posenc
