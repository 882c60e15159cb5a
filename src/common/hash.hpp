#pragma once
/// Stable 64-bit hashing (xxHash64): the same on every machine and every build, so controller
/// replicas make the same choices and produce the same ETags.

#include <cstdint>
#include <string_view>

namespace pingmesh::hash {

/// xxHash64 of the bytes with a seed.
uint64_t hash64(std::string_view data, uint64_t seed = 0);

/// Mixes two 64-bit values into one (order-sensitive).
inline uint64_t combine(uint64_t a, uint64_t b) {
  uint64_t x = a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

}  // namespace pingmesh::hash
