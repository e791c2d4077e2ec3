// The values loom-perf feeds a collective and the results it expects, chosen so that the exact
// result does not depend on the reduction order or on where the library rounds:
//
//   sum, mulsum  each rank adds a small integer in [1, m] to an element (or 0 where sparse, see
//                below), with nranks*m <= the type's exact-integer limit L, so every partial
//                sum of any subset of ranks is exact. With more ranks than L (fp8 at scale)
//                only every s-th rank is active per element, keeping at most L active.
//                mulsum is PreMulSum with scalar 2 on top of the same values (limit L/2).
//   prod         factors 1 or 2 (and -1 for signed types), with at most maxPow2 twos per
//                element: every partial product is ±2^k, exact.
//   max, min     any small integers in range (the result is one of the inputs).
//   avg          per element a base c plus +e/-e pairs over ranks, so the sum is exactly
//                nranks*c and the average c, with every partial sum in [0, L].
//   none         (data movement) distinct small integers per rank and element.
// Integer types wrap (two's complement), so their sums and products are exact modulo 2^bits
// by construction; the values stay small anyway.
//
// Values are a pure function of (rank, element index), so any rank can compute any other
// rank's input and the expected result without communication.
//
// Thread-safety: immutable after construction.
#pragma once

#include <cstdint>

#include "loom/loom.h"
#include "types.h"

namespace loom::perf {

class ValueModel {
 public:
  ValueModel(loomDataType_t type, OpKind op, int nranks);

  // Input of `rank` for global element `index`.
  int64_t input(int rank, uint64_t index) const;
  // The reduction over every rank's input(·, index) (op must reduce).
  int64_t reduced(uint64_t index) const;

 private:
  int64_t sumInput(int rank, uint64_t index) const;
  int64_t prodInput(int rank, uint64_t index) const;
  int64_t avgInput(int rank, uint64_t index) const;
  int64_t anyInput(int rank, uint64_t index) const;

  loomDataType_t type_;
  OpKind op_;
  int nranks_;
  bool signed_;
  int64_t sumMax_ = 1;      // m: largest per-rank addend
  int64_t sumStride_ = 1;   // s: rank r is active at index i when (r + i) % s == 0
  int64_t prodStride_ = 1;  // q: rank r may contribute a 2 when (r + i) % q == 0
  int64_t avgMax_ = 0;      // per-rank value bound for avg (0: all zeros)
  int64_t anyRange_ = 1;    // max/min/none values in [-anyRange, anyRange] (signed) or [0, ..]
};

// A cheap, well-mixed hash of (rank, index).
inline uint64_t mixHash(uint64_t rank, uint64_t index) {
  uint64_t x = index * 0x9E3779B97F4A7C15ull + (rank + 1) * 0xC2B2AE3D27D4EB4Full;
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 29;
  return x;
}

}  // namespace loom::perf
