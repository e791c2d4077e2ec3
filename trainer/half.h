// half.h - bfloat16 and IEEE binary16 by rounding: the trainer computes in float and rounds
// the values that a half-precision run would store (matmul inputs, activations) to the nearest
// representable half value, ties to even. The conversions are written out here (no compiler
// extension types) so that every platform rounds identically.
#ifndef LOOM_TRAINER_HALF_H_
#define LOOM_TRAINER_HALF_H_

#include <cstddef>
#include <cstdint>

namespace loom::trainer {

// The precision of matmul inputs and activations. kFp32 means "the scalar type itself" (no
// rounding), also for double runs.
enum class Precision { kFp32, kBf16, kFp16 };

const char* precisionName(Precision p);

// float -> bfloat16 bits, round to nearest even; NaN stays NaN (quietened), overflow -> inf.
uint16_t floatToBf16Bits(float f);
float bf16BitsToFloat(uint16_t h);
// float -> binary16 bits, round to nearest even, with subnormals; |f| >= 65520 -> inf.
uint16_t floatToFp16Bits(float f);
float fp16BitsToFloat(uint16_t h);

inline float roundBf16(float f) {
  return bf16BitsToFloat(floatToBf16Bits(f));
}
inline float roundFp16(float f) {
  return fp16BitsToFloat(floatToFp16Bits(f));
}

// Rounds x[0..n) in place to the precision p (a no-op for kFp32).
template <typename T>
void roundInPlace(Precision p, T* x, size_t n);
// out[i] = round(x[i]); out may equal x.
template <typename T>
void roundCopy(Precision p, const T* x, T* out, size_t n);

}  // namespace loom::trainer

#endif  // LOOM_TRAINER_HALF_H_
