#include "kernels/blas_sgemm.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <limits>

// The Fortran BLAS entry point (column-major, 32-bit sizes: the LP64 interface LibTorch links).
extern "C" void sgemm_(const char* transpose_a, const char* transpose_b, const int* m,
                       const int* n, const int* k, const float* alpha, const float* a,
                       const int* lda, const float* b, const int* ldb, const float* beta,
                       float* c, const int* ldc);

// MKL's C entry point for the calling thread's own thread count (returns the previous one, 0 for
// "none set"). Weak: a LibTorch whose BLAS is not MKL leaves it null. Not the lower-case
// mkl_set_num_threads_local, which in libtorch_cpu is the Fortran entry point and takes a pointer.
extern "C" int MKL_Set_Num_Threads_Local(int threads) __attribute__((weak));

namespace posenc::kernels {
namespace {

// Inside an at::parallel_for task the product runs on the calling thread alone anyway, but MKL
// still consults its threading layer on every call unless told so: telling it cut the LFF
// encoder's forward by 21% and its forward + backward by 29% (docs/kernels.md).
class OneBlasThreadInsideTasks {
 public:
  OneBlasThreadInsideTasks() {
    if (MKL_Set_Num_Threads_Local != nullptr && at::in_parallel_region()) {
      previous_ = MKL_Set_Num_Threads_Local(1);
      set_ = true;
    }
  }
  ~OneBlasThreadInsideTasks() {
    if (set_)
      MKL_Set_Num_Threads_Local(previous_);
  }
  OneBlasThreadInsideTasks(const OneBlasThreadInsideTasks&) = delete;
  OneBlasThreadInsideTasks& operator=(const OneBlasThreadInsideTasks&) = delete;

 private:
  bool set_ = false;
  int previous_ = 0;
};

}  // namespace

void sgemm(char transpose_a, char transpose_b, int64_t m, int64_t n, int64_t k, const float* a,
           const float* b, float beta, float* c) {
  if (m == 0 || n == 0)
    return;
  if (k == 0) {  // beta c, without asking the BLAS about an empty product
    if (beta == 0.0F)
      std::fill(c, c + m * n, 0.0F);
    return;
  }
  constexpr int64_t kLargest = std::numeric_limits<int>::max();
  TORCH_CHECK(m <= kLargest && n <= kLargest && k <= kLargest, "sgemm: a ", m, " x ", k, " by ",
              k, " x ", n, " product exceeds the BLAS's 32-bit sizes; use smaller batches");
  // Row-major c = op(a) op(b) is column-major c^T = op(b)^T op(a)^T: the same buffers, the
  // operands swapped, each with its own flag.
  const int rows = static_cast<int>(n), columns = static_cast<int>(m), depth = static_cast<int>(k);
  const int lda = static_cast<int>(transpose_a == 'T' ? m : k);
  const int ldb = static_cast<int>(transpose_b == 'T' ? k : n);
  const float alpha = 1.0F;
  const OneBlasThreadInsideTasks one_thread;
  sgemm_(&transpose_b, &transpose_a, &rows, &columns, &depth, &alpha, b, &ldb, a, &lda, &beta, c,
         &rows);
}

}  // namespace posenc::kernels
