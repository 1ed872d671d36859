#include "kernels/simd_dispatch.h"

#include "posenc/kernels/kernel_settings.h"

namespace posenc::kernels {

const SimdKernels& active_kernels() {
  switch (active_simd_level()) {
#if defined(__x86_64__)
    case SimdLevel::Avx512:
      return avx512_kernels();
    case SimdLevel::Avx2:
      return avx2_kernels();
#endif
    default:
      return scalar_kernels();
  }
}

}  // namespace posenc::kernels
