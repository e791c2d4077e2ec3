// rng.h - counter-based random numbers: every value is a pure function of (seed, stream,
// index), so a tensor's initial values do not depend on who computes them or in which order.
#ifndef LOOM_TRAINER_RNG_H_
#define LOOM_TRAINER_RNG_H_

#include <cmath>
#include <cstdint>

namespace loom::trainer {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

inline uint64_t hashOf(uint64_t a, uint64_t b, uint64_t c) {
  return splitmix64(splitmix64(splitmix64(a) ^ b) ^ c);
}

// Uniform in (0, 1): never 0, so log() is finite.
inline double uniformAt(uint64_t seed, uint64_t stream, uint64_t index) {
  return (static_cast<double>(hashOf(seed, stream, index) >> 11) + 0.5) * 0x1.0p-53;
}

// Standard normal (Box-Muller on two counter-based uniforms).
inline double normalAt(uint64_t seed, uint64_t stream, uint64_t index) {
  const double u1 = uniformAt(seed, stream, 2 * index);
  const double u2 = uniformAt(seed, stream, 2 * index + 1);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

}  // namespace loom::trainer

#endif  // LOOM_TRAINER_RNG_H_
