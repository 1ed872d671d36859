#pragma once
// Loop helpers shared by the kernel bodies; same inclusion rule as peg_conv_body.h: only inside a
// simd_<isa>.cpp, after its `Vec` is defined in namespace POSENC_SIMD_NAMESPACE.
#include <cstdint>
#include <type_traits>

namespace posenc::kernels::POSENC_SIMD_NAMESPACE {
namespace {

using Register = typename Vec::Register;
constexpr int64_t kLanes = Vec::kLanes;
constexpr int kBlock = 4;

// Loads `tail` lanes (zeros after) when tail > 0, a full vector otherwise.
inline Register load_lanes(const float* p, int64_t tail) {
  return tail > 0 ? Vec::load_partial(p, tail) : Vec::load(p);
}
inline void store_lanes(float* p, Register v, int64_t tail) {
  if (tail > 0)
    Vec::store_partial(p, v, tail);
  else
    Vec::store(p, v);
}

// Whole-vector or masked access chosen at compile time (Partial), for bodies compiled once each.
template <bool Partial>
inline Register load_vector(const float* p, int64_t tail) {
  if constexpr (Partial)
    return Vec::load_partial(p, tail);
  else
    return Vec::load(p);
}
template <bool Partial>
inline void store_vector(float* p, Register v, int64_t tail) {
  if constexpr (Partial)
    Vec::store_partial(p, v, tail);
  else
    Vec::store(p, v);
}

// Calls body(c, tail, partial) for each vector of 0..count: whole vectors with partial a
// std::false_type (tail 0), then the last, partial vector of `tail` lanes with std::true_type.
template <typename Body>
inline void for_each_vector(int64_t count, Body&& body) {
  int64_t c = 0;
  for (; c + kLanes <= count; c += kLanes)
    body(c, int64_t{0}, std::false_type{});
  if (c < count)
    body(c, count - c, std::true_type{});
}

// Full unrolling of a loop with a compile-time trip count, so arrays of registers stay registers.
#define POSENC_UNROLL _Pragma("GCC unroll 64")

// Calls body(U, c, tail) over 0..count, U (an integral_constant) vectors at index c, where
// tail > 0 (with U = 1) marks the last, partial vector of `tail` lanes.
template <typename Body>
inline void for_vector_blocks(int64_t count, Body&& body) {
  int64_t c = 0;
  for (; c + kBlock * kLanes <= count; c += kBlock * kLanes)
    body(std::integral_constant<int, kBlock>{}, c, 0);
  for (; c + kLanes <= count; c += kLanes)
    body(std::integral_constant<int, 1>{}, c, 0);
  if (c < count)
    body(std::integral_constant<int, 1>{}, c, count - c);
}

}  // namespace
}  // namespace posenc::kernels::POSENC_SIMD_NAMESPACE
