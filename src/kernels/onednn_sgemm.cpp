#include "kernels/onednn_sgemm.h"

#include <dnnl.h>

#include <c10/util/Exception.h>

#include <algorithm>

namespace posenc::kernels {

void sgemm(char transpose_a, char transpose_b, int64_t m, int64_t n, int64_t k, const float* a,
           const float* b, float beta, float* c) {
  if (m == 0 || n == 0)
    return;
  if (k == 0) {  // dnnl_sgemm is not asked to handle empty products
    if (beta == 0.0F)
      std::fill(c, c + m * n, 0.0F);
    return;
  }
  const int64_t lda = transpose_a == 'T' ? m : k;
  const int64_t ldb = transpose_b == 'T' ? k : n;
  const dnnl_status_t status =
      dnnl_sgemm(transpose_a, transpose_b, m, n, k, 1.0F, a, lda, b, ldb, beta, c, n);
  TORCH_CHECK(status == dnnl_success, "oneDNN sgemm (", m, " x ", k, " by ", k, " x ", n,
              ") failed with status ", static_cast<int>(status));
}

}  // namespace posenc::kernels
