#pragma once

#include <c10/core/Allocator.h>

#include <cstddef>
#include <cstdint>

namespace posenc::testing {

// While alive, every CPU tensor allocation goes through this allocator, which counts the bytes
// allocated in its lifetime that are still live, and their peak. Memory tests use it to bound
// what an operation allocates. Not for concurrent use by several tests.
class CountingCpuAllocator : public c10::Allocator {
 public:
  CountingCpuAllocator();
  ~CountingCpuAllocator() override;
  CountingCpuAllocator(const CountingCpuAllocator&) = delete;
  CountingCpuAllocator& operator=(const CountingCpuAllocator&) = delete;

  c10::DataPtr allocate(size_t bytes) override;
  void copy_data(void* destination, const void* source, std::size_t bytes) const override;

  int64_t peak_bytes() const;

 private:
  c10::Allocator* underlying_;
};

}  // namespace posenc::testing
