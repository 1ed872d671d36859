#pragma once

#include <cstdint>
#include <random>

namespace posenc {

// The random source of the generated set tasks: a 64-bit Mersenne Twister, whose sequence the C++
// standard fixes, turned into numbers by explicit arithmetic (the standard distributions differ
// between library implementations), so a seed gives the same data on every platform.
class SeededRandom {
 public:
  explicit SeededRandom(uint64_t seed) : engine_(seed) {}

  // uniform in [0, 1)
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  // uniform in [low, high)
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  // uniform integer in [0, count); count >= 1. The modulo bias is below 2^-40 for any count
  // posenc draws.
  int64_t below(int64_t count) {
    return static_cast<int64_t>(engine_() % static_cast<uint64_t>(count));
  }

 private:
  std::mt19937_64 engine_;
};

}  // namespace posenc
