// The reduction kernels' bodies, included by reduce_{baseline,avx2,avx512}.cpp, each compiled
// for its instruction set. Every function here is plain loops the compiler vectorises; the F16C
// path for float16 uses intrinsics because compilers do not vectorise half conversions.
//
// Each including file defines LOOM_KERNEL_NS (its namespace) before including this header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__F16C__) && defined(__AVX2__)
#include <immintrin.h>
#endif

#include "base/dtype.h"
#include "base/half.h"

#include "base/reduce_table.h"

namespace loom::kernels::LOOM_KERNEL_NS::detail {

// Storage type <-> compute type.
struct F16 {
  uint16_t bits;
};
struct BF16 {
  uint16_t bits;
};
struct E4M3 {
  uint8_t bits;
};
struct E5M2 {
  uint8_t bits;
};

template <typename T>
struct Traits {
  using Acc = T;
  static Acc load(T v) { return v; }
  static T store(Acc v) { return v; }
};
template <>
struct Traits<F16> {
  using Acc = float;
  static float load(F16 v) { return half::fp16ToFloat(v.bits); }
  static F16 store(float v) { return F16{half::floatToFp16(v)}; }
};
template <>
struct Traits<BF16> {
  using Acc = float;
  static float load(BF16 v) { return half::bf16ToFloat(v.bits); }
  static BF16 store(float v) { return BF16{half::floatToBf16(v)}; }
};
template <>
struct Traits<E4M3> {
  using Acc = float;
  static float load(E4M3 v) { return half::e4m3ToFloat(v.bits); }
  static E4M3 store(float v) { return E4M3{half::floatToE4m3(v)}; }
};
template <>
struct Traits<E5M2> {
  using Acc = float;
  static float load(E5M2 v) { return half::e5m2ToFloat(v.bits); }
  static E5M2 store(float v) { return E5M2{half::floatToE5m2(v)}; }
};

template <typename A>
struct Sum {
  static A apply(A a, A b) {
    if constexpr (std::is_integral_v<A>) {
      using U = std::make_unsigned_t<A>;
      return static_cast<A>(static_cast<U>(a) + static_cast<U>(b));
    } else {
      return a + b;
    }
  }
};
template <typename A>
struct Prod {
  static A apply(A a, A b) {
    if constexpr (std::is_integral_v<A>) {
      using U = std::make_unsigned_t<A>;
      using W = std::conditional_t<(sizeof(U) < sizeof(unsigned)), unsigned, U>;
      return static_cast<A>(
          static_cast<U>(static_cast<W>(static_cast<U>(a)) * static_cast<W>(static_cast<U>(b))));
    } else {
      return a * b;
    }
  }
};
// NaN-propagating: if either operand is NaN the result is NaN, whatever the order.
template <typename A>
struct Max {
  static A apply(A a, A b) { return (a > b || a != a) ? a : b; }
};
template <typename A>
struct Min {
  static A apply(A a, A b) { return (a < b || a != a) ? a : b; }
};

template <typename T, template <typename> class Op>
void reduce2(void* dst, const void* a, const void* b, size_t n) {
  using Acc = typename Traits<T>::Acc;
  T* d = static_cast<T*>(dst);
  const T* x = static_cast<const T*>(a);
  const T* y = static_cast<const T*>(b);
  for (size_t i = 0; i < n; ++i)
    d[i] = Traits<T>::store(Op<Acc>::apply(Traits<T>::load(x[i]), Traits<T>::load(y[i])));
}

#if defined(__F16C__) && defined(__AVX2__)
template <template <typename> class Op>
inline __m256 applyVec(__m256 a, __m256 b) {
  if constexpr (std::is_same_v<Op<float>, Sum<float>>)
    return _mm256_add_ps(a, b);
  else if constexpr (std::is_same_v<Op<float>, Prod<float>>)
    return _mm256_mul_ps(a, b);
  else if constexpr (std::is_same_v<Op<float>, Max<float>>) {
    // max_ps(a, b) returns b when either is NaN; blend a back in where a is the NaN.
    __m256 r = _mm256_max_ps(a, b);
    __m256 anan = _mm256_cmp_ps(a, a, _CMP_UNORD_Q);
    return _mm256_blendv_ps(r, a, anan);
  } else {
    __m256 r = _mm256_min_ps(a, b);
    __m256 anan = _mm256_cmp_ps(a, a, _CMP_UNORD_Q);
    return _mm256_blendv_ps(r, a, anan);
  }
}
template <template <typename> class Op>
void reduce2F16(void* dst, const void* a, const void* b, size_t n) {
  uint16_t* d = static_cast<uint16_t*>(dst);
  const uint16_t* x = static_cast<const uint16_t*>(a);
  const uint16_t* y = static_cast<const uint16_t*>(b);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 va = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    __m256 vb = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(y + i)));
    __m128i r = _mm256_cvtps_ph(applyVec<Op>(va, vb), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), r);
  }
  reduce2<F16, Op>(d + i, x + i, y + i, n - i);
}
#endif

template <typename T, template <typename> class Op>
void reduceN(void* dst, const void* const* srcs, int nsrcs, size_t n) {
  using Acc = typename Traits<T>::Acc;
  constexpr size_t kBlock = 256;
  T* d = static_cast<T*>(dst);
  Acc acc[kBlock];
  for (size_t base = 0; base < n; base += kBlock) {
    size_t len = n - base < kBlock ? n - base : kBlock;
    const T* s0 = static_cast<const T*>(srcs[0]) + base;
    for (size_t i = 0; i < len; ++i)
      acc[i] = Traits<T>::load(s0[i]);
    for (int s = 1; s < nsrcs; ++s) {
      const T* sp = static_cast<const T*>(srcs[s]) + base;
      for (size_t i = 0; i < len; ++i)
        acc[i] = Op<Acc>::apply(acc[i], Traits<T>::load(sp[i]));
    }
    for (size_t i = 0; i < len; ++i)
      d[base + i] = Traits<T>::store(acc[i]);
  }
}

template <typename T>
void scale(void* dst, const void* src, const void* scalar, size_t n) {
  using Acc = typename Traits<T>::Acc;
  T sv;
  std::memcpy(&sv, scalar, sizeof(T));
  Acc s = Traits<T>::load(sv);
  T* d = static_cast<T*>(dst);
  const T* x = static_cast<const T*>(src);
  for (size_t i = 0; i < n; ++i)
    d[i] = Traits<T>::store(Prod<Acc>::apply(Traits<T>::load(x[i]), s));
}

template <typename T>
void divide(void* data, size_t n, uint64_t divisor) {
  using Acc = typename Traits<T>::Acc;
  T* d = static_cast<T*>(data);
  if constexpr (std::is_integral_v<Acc>) {
    const Acc q = static_cast<Acc>(divisor);
    for (size_t i = 0; i < n; ++i)
      d[i] = static_cast<T>(d[i] / q);
  } else {
    const Acc q = static_cast<Acc>(divisor);
    for (size_t i = 0; i < n; ++i)
      d[i] = Traits<T>::store(Traits<T>::load(d[i]) / q);
  }
}

template <typename T>
void fillRow(KernelTable* t, DataType type) {
  int i = static_cast<int>(type);
  t->reduce2[i][0] = &reduce2<T, Sum>;
  t->reduce2[i][1] = &reduce2<T, Prod>;
  t->reduce2[i][2] = &reduce2<T, Max>;
  t->reduce2[i][3] = &reduce2<T, Min>;
  t->reduceN[i][0] = &reduceN<T, Sum>;
  t->reduceN[i][1] = &reduceN<T, Prod>;
  t->reduceN[i][2] = &reduceN<T, Max>;
  t->reduceN[i][3] = &reduceN<T, Min>;
  t->scale[i] = &scale<T>;
  t->divide[i] = &divide<T>;
}

inline KernelTable makeTable() {
  KernelTable t{};
  fillRow<int8_t>(&t, DataType::kInt8);
  fillRow<uint8_t>(&t, DataType::kUint8);
  fillRow<int32_t>(&t, DataType::kInt32);
  fillRow<uint32_t>(&t, DataType::kUint32);
  fillRow<int64_t>(&t, DataType::kInt64);
  fillRow<uint64_t>(&t, DataType::kUint64);
  fillRow<F16>(&t, DataType::kFloat16);
  fillRow<float>(&t, DataType::kFloat32);
  fillRow<double>(&t, DataType::kFloat64);
  fillRow<BF16>(&t, DataType::kBfloat16);
  fillRow<E4M3>(&t, DataType::kFloat8e4m3);
  fillRow<E5M2>(&t, DataType::kFloat8e5m2);
#if defined(__F16C__) && defined(__AVX2__)
  int h = static_cast<int>(DataType::kFloat16);
  t.reduce2[h][0] = &reduce2F16<Sum>;
  t.reduce2[h][1] = &reduce2F16<Prod>;
  t.reduce2[h][2] = &reduce2F16<Max>;
  t.reduce2[h][3] = &reduce2F16<Min>;
#endif
  return t;
}

}  // namespace loom::kernels::LOOM_KERNEL_NS::detail

namespace loom::kernels::LOOM_KERNEL_NS {
const KernelTable& table() {
  static const KernelTable t = detail::makeTable();
  return t;
}
}  // namespace loom::kernels::LOOM_KERNEL_NS
