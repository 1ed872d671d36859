#include "support/counting_allocator.h"

#include <algorithm>
#include <atomic>

namespace posenc::testing {
namespace {

// Static, because tensors allocated during a test may be freed after the allocator is gone.
std::atomic<int64_t> live_bytes{0};
std::atomic<int64_t> peak{0};

struct Allocation {
  c10::DataPtr inner;
  int64_t bytes;
};

void release(void* context) {
  auto* allocation = static_cast<Allocation*>(context);
  live_bytes -= allocation->bytes;
  delete allocation;
}

}  // namespace

CountingCpuAllocator::CountingCpuAllocator()
    : underlying_(c10::GetAllocator(c10::DeviceType::CPU)) {
  live_bytes = 0;
  peak = 0;
  c10::SetAllocator(c10::DeviceType::CPU, this);
}

CountingCpuAllocator::~CountingCpuAllocator() {
  c10::SetAllocator(c10::DeviceType::CPU, underlying_);
}

c10::DataPtr CountingCpuAllocator::allocate(size_t bytes) {
  auto inner = underlying_->allocate(bytes);
  void* data = inner.get();
  const auto device = inner.device();
  auto* allocation = new Allocation{std::move(inner), static_cast<int64_t>(bytes)};
  const int64_t now = live_bytes += allocation->bytes;
  int64_t highest = peak.load();
  while (now > highest && !peak.compare_exchange_weak(highest, now)) {
  }
  return {data, allocation, &release, device};
}

void CountingCpuAllocator::copy_data(void* destination, const void* source,
                                     std::size_t bytes) const {
  default_copy_data(destination, source, bytes);
}

int64_t CountingCpuAllocator::peak_bytes() const {
  return peak.load();
}

}  // namespace posenc::testing
