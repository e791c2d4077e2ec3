// Fast non-cryptographic 64-bit mixing, for hot paths (message tags, cache keys). Not for
// anything an attacker may choose to collide; host identities and ids use hash64 (SHA-256).
#pragma once

#include <cstdint>

namespace loom {

// splitmix64's finaliser: a bijection with good avalanche.
constexpr uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

constexpr uint64_t hashCombine(uint64_t seed, uint64_t value) {
  return mix64(seed ^ (value + 0x9e3779b97f4a7c15ull + (seed << 6) + (seed >> 2)));
}

}  // namespace loom
