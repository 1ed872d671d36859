#pragma once
// Row-major single-precision matrix products through the BLAS inside LibTorch (the sgemm_ that
// libtorch_cpu exports: MKL in the x86-64 builds), shared by the fused linear layer and the fused
// LFF MLP. Called inside an at::parallel_for task, MKL runs the product on the calling thread
// alone (it does not nest OpenMP regions).
#include <cstdint>

namespace posenc::kernels {

// c (m, n) = op(a) op(b) + beta c, op(x) = x^T when its flag is 'T', else x; all row-major and
// contiguous: a is (m, k), or (k, m) with 'T'; b is (k, n), or (n, k) with 'T'. An empty product
// (k = 0) leaves beta c.
void sgemm(char transpose_a, char transpose_b, int64_t m, int64_t n, int64_t k, const float* a,
           const float* b, float beta, float* c);

}  // namespace posenc::kernels
