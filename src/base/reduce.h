// Host reduction kernels: the arithmetic of every collective on host memory.
//
// Kernels are compiled three times (baseline x86-64, x86-64-v3 with AVX2/F16C, x86-64-v4 with
// AVX-512) and the best one this CPU supports is chosen once, at first use. Half types
// (float16, bfloat16, fp8) are widened to float, combined, and rounded once per output element,
// so an N-input reduction rounds once, not N-1 times. Integer Sum/Prod wrap (two's complement).
// Max/Min propagate NaN. Avg is Sum followed by divideInPlace(nranks) at the end (integer
// division for integer types), so its result does not depend on the reduction order.
//
// Aliasing: dst may equal any source exactly; partial overlap is not allowed.
// Thread-safety: pure functions.
#pragma once

#include <cstddef>

#include "base/dtype.h"

namespace loom {

// dst[i] = a[i] (op) b[i] for i < count. op is Sum, Prod, Max or Min (Avg and PreMulSum reduce
// with Sum; see the header comment).
void reduce2(DataType type, RedOpKind op, void* dst, const void* a, const void* b, size_t count);

// dst[i] = srcs[0][i] (op) srcs[1][i] (op) … for nsrcs >= 1 sources, accumulating half types in
// float and rounding once.
void reduceN(DataType type, RedOpKind op, void* dst, const void* const* srcs, int nsrcs,
             size_t count);

// dst[i] = src[i] * scalar, scalar being one element of `type` (PreMulSum's pre-scaling).
void scale(DataType type, void* dst, const void* src, const void* scalar, size_t count);

// data[i] = data[i] / divisor (Avg's finishing step; integer division for integer types).
void divideInPlace(DataType type, void* data, size_t count, uint64_t divisor);

// Which kernel set was chosen: "avx512", "avx2" or "baseline".
const char* reduceKernelIsa();

}  // namespace loom
