#pragma once

#include "kernels/simd_kernels.h"

namespace posenc::kernels {

// The kernel table for active_simd_level().
const SimdKernels& active_kernels();

}  // namespace posenc::kernels
