// Scalar conversions between float and the narrow floating types loom reduces:
// IEEE binary16 (float16), bfloat16, and the OCP 8-bit formats E4M3 (the "fn" variant: no
// infinity, one NaN pattern per sign, max 448) and E5M2 (IEEE-like, with infinities).
//
// Narrowing rounds to nearest even. Like CUDA's __nv_fp8 constructors (__NV_SATFINITE), fp8
// narrowing saturates finite out-of-range values to the largest finite value; NaN stays NaN.
// These are branch-light so that loops over them vectorise; the hot kernels also have
// F16C paths (reduce_kernels.h). They have internal linkage (static) on purpose: the kernels
// are compiled for several instruction sets, and a shared inline copy built with AVX-512
// could otherwise be picked by the linker for code that runs on any x86-64.
#pragma once

#include <cstdint>
#include <cstring>

// Under nvcc the same functions are compiled for the device too (base/cuda_kernels.cu), so
// device reductions round exactly like host ones.
#if defined(__CUDACC__)
#define LOOM_HD __host__ __device__
#else
#define LOOM_HD
#endif

namespace loom::half {

static inline LOOM_HD uint32_t floatBits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}
static inline LOOM_HD float bitsFloat(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

// ---- bfloat16 ----
static inline LOOM_HD float bf16ToFloat(uint16_t h) {
  return bitsFloat(static_cast<uint32_t>(h) << 16);
}
static inline LOOM_HD uint16_t floatToBf16(float f) {
  uint32_t u = floatBits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// ---- float16 ----
static inline LOOM_HD float fp16ToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  if (exp == 0x1f) return bitsFloat(sign | 0x7f800000u | (man << 13));  // inf / NaN
  if (exp == 0) {
    // zero or subnormal: man * 2^-24
    float v = static_cast<float>(man) * (1.0f / 16777216.0f);
    return sign ? -v : v;
  }
  return bitsFloat(sign | ((exp + 112u) << 23) | (man << 13));
}

static inline LOOM_HD uint16_t floatToFp16(float f) {
  uint32_t u = floatBits(f);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to inf
  if (abs < 0x38800000u) {
    // Result is subnormal (or zero): scale so that the half ulp 2^-24 becomes 1.0 and let the
    // float adder round to nearest even.
    float v = bitsFloat(abs) * 16777216.0f;  // exact: |f| < 2^-14
    // v < 1024; adding 2^23 puts the integer part in the low mantissa bits, rounded RNE.
    uint32_t r = floatBits(v + 8388608.0f) - 0x4b000000u;
    return static_cast<uint16_t>(sign | r);
  }
  // Normal: rebias exponent (127 -> 15) and round the 13 dropped bits to nearest even.
  uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
  return static_cast<uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
}

// ---- float8 ----
// Generic narrowing to a sign/exponent/mantissa format with EXP exponent bits, MAN mantissa
// bits, and the largest finite magnitude given as its bit pattern (without sign).
template <int EXP, int MAN>
static inline LOOM_HD uint8_t floatToFp8(float f, uint8_t maxFinite, uint8_t nanPattern) {
  constexpr int kBias = (1 << (EXP - 1)) - 1;
  uint32_t u = floatBits(f);
  uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80u);
  uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint8_t>(sign | nanPattern);
  float a = bitsFloat(abs);
  // Smallest normal of the target is 2^(1-bias); below it, quantise on the fixed subnormal
  // grid of step 2^(1-bias-MAN) with float's own RNE addition.
  const float minNormal = bitsFloat(static_cast<uint32_t>(127 + 1 - kBias) << 23);
  uint32_t code;
  if (a < minNormal) {
    const float invStep = bitsFloat(static_cast<uint32_t>(127 - (1 - kBias - MAN)) << 23);
    float v = a * invStep;                           // in [0, 2^MAN)
    code = floatBits(v + 8388608.0f) - 0x4b000000u;  // RNE to integer
  } else {
    constexpr int kDrop = 23 - MAN;
    uint32_t rounded = abs + ((1u << (kDrop - 1)) - 1u) + ((abs >> kDrop) & 1u);
    int32_t e = static_cast<int32_t>(rounded >> 23) - 127 + kBias;
    uint32_t m = (rounded >> kDrop) & ((1u << MAN) - 1u);
    if (e >= (1 << EXP))
      code = 0xffu;  // overflow, saturated below
    else
      code = (static_cast<uint32_t>(e) << MAN) | m;
  }
  if (code > maxFinite) code = maxFinite;  // saturate finite (and inf) to the largest finite
  return static_cast<uint8_t>(sign | code);
}

template <int EXP, int MAN>
static inline LOOM_HD float fp8ToFloat(uint8_t h, bool hasInf) {
  constexpr int kBias = (1 << (EXP - 1)) - 1;
  uint32_t sign = static_cast<uint32_t>(h & 0x80u) << 24;
  uint32_t exp = (h >> MAN) & ((1u << EXP) - 1u);
  uint32_t man = h & ((1u << MAN) - 1u);
  if (hasInf && exp == (1u << EXP) - 1u)
    return bitsFloat(sign | 0x7f800000u | (man ? 0x400000u : 0u));
  if (!hasInf && exp == (1u << EXP) - 1u && man == (1u << MAN) - 1u)
    return bitsFloat(sign | 0x7fc00000u);
  if (exp == 0) {
    float v =
        static_cast<float>(man) * bitsFloat(static_cast<uint32_t>(127 + 1 - kBias - MAN) << 23);
    return sign ? -v : v;
  }
  return bitsFloat(sign | ((exp - kBias + 127) << 23) | (man << (23 - MAN)));
}

static inline LOOM_HD float e4m3ToFloat(uint8_t h) {
  return fp8ToFloat<4, 3>(h, false);
}
static inline LOOM_HD uint8_t floatToE4m3(float f) {
  return floatToFp8<4, 3>(f, 0x7e, 0x7f);
}
static inline LOOM_HD float e5m2ToFloat(uint8_t h) {
  return fp8ToFloat<5, 2>(h, true);
}
static inline LOOM_HD uint8_t floatToE5m2(float f) {
  return floatToFp8<5, 2>(f, 0x7b, 0x7e);
}

}  // namespace loom::half
