// The libFuzzer entry point of one target; CMake compiles it once per target with
// POSENC_FUZZ_TARGET naming the function in fuzz_targets.h.
#include "fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  posenc::fuzz::POSENC_FUZZ_TARGET(data, size);
  return 0;
}
