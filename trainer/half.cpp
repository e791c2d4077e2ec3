#include "half.h"

#include <cmath>
#include <cstring>

namespace loom::trainer {

namespace {

uint32_t bitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

float floatOf(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

}  // namespace

const char* precisionName(Precision p) {
  switch (p) {
    case Precision::kFp32:
      return "fp32";
    case Precision::kBf16:
      return "bf16";
    case Precision::kFp16:
      return "fp16";
  }
  return "?";
}

uint16_t floatToBf16Bits(float f) {
  uint32_t x = bitsOf(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);  // ties to even; a carry into the exponent is correct
  return static_cast<uint16_t>(x >> 16);
}

float bf16BitsToFloat(uint16_t h) {
  return floatOf(static_cast<uint32_t>(h) << 16);
}

uint16_t floatToFp16Bits(float f) {
  uint32_t x = bitsOf(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u) return static_cast<uint16_t>(sign | (x > 0x7f800000u ? 0x7e00u : 0x7c00u));
  if (x >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to inf
  if (x < 0x38800000u) {
    // Below the smallest normal 2^-14: a multiple of 2^-24. nearbyint rounds ties to even in
    // the default rounding mode; 1024 becomes the smallest normal, which is the right bits.
    const float scaled = floatOf(x) * 16777216.0f;  // exact: a power of two
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(scaled)));
  }
  const uint32_t odd = (x >> 13) & 1u;
  x += 0xc8000000u + 0xfffu + odd;  // rebias exponent 127 -> 15, round 23 -> 10 mantissa bits
  return static_cast<uint16_t>(sign | (x >> 13));
}

float fp16BitsToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    const float v = static_cast<float>(mant) * (1.0f / 16777216.0f);
    return sign ? -v : v;
  }
  if (exp == 31) return floatOf(sign | 0x7f800000u | (mant << 13));
  return floatOf(sign | ((exp + 112u) << 23) | (mant << 13));
}

template <typename T>
void roundCopy(Precision p, const T* x, T* out, size_t n) {
  switch (p) {
    case Precision::kFp32:
      if (out != x) std::memcpy(out, x, n * sizeof(T));
      return;
    case Precision::kBf16:
      for (size_t i = 0; i < n; ++i)
        out[i] = static_cast<T>(roundBf16(static_cast<float>(x[i])));
      return;
    case Precision::kFp16:
      for (size_t i = 0; i < n; ++i)
        out[i] = static_cast<T>(roundFp16(static_cast<float>(x[i])));
      return;
  }
}

template <typename T>
void roundInPlace(Precision p, T* x, size_t n) {
  if (p != Precision::kFp32) roundCopy(p, x, x, n);
}

template void roundCopy<float>(Precision, const float*, float*, size_t);
template void roundCopy<double>(Precision, const double*, double*, size_t);
template void roundInPlace<float>(Precision, float*, size_t);
template void roundInPlace<double>(Precision, double*, size_t);

}  // namespace loom::trainer
