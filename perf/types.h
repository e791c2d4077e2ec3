// Element types and reduction operators as loom-perf names them (nccl-tests' spelling), and
// exact encodings of small integers into every type, including the narrow floating types:
// IEEE binary16 ("half"), bfloat16, and OCP fp8 E4M3 (the "fn" variant: no infinity, max 448)
// and E5M2. loom-perf links only the public API, so it carries its own encoder; it needs only
// values that are exactly representable, and asserts that they are.
//
// Thread-safety: pure functions and immutable tables.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "loom/loom.h"

namespace loom::perf {

struct TypeInfo {
  loomDataType_t type;
  const char* name;  // nccl-tests' name: int8 … float, double, bfloat16, f8e4m3, f8e5m2
  size_t bytes;
  bool isFloat;
  bool isSigned;       // floats are signed
  int64_t exactLimit;  // every integer in [0, exactLimit] is exact (capped at 2^24)
  int maxPow2;         // 2^k is exact (and, for integers, no wider than the type) for k <= this
};

const TypeInfo& typeInfo(loomDataType_t type);
// Every type, in nccl-tests' order (what -d all runs).
std::span<const loomDataType_t> allTypes();
// Parses a type name: nccl-tests' names plus common aliases (fp16, float16, bf16, fp32,
// float32, fp64, float64, int, char, fp8_e4m3, e4m3, …). nullopt for an unknown name.
std::optional<loomDataType_t> parseType(std::string_view name);

// The operator column: loom's built-in ops, PreMulSum ("mulsum", made per call with a scalar
// of 2), and "none" for collectives that do not reduce.
enum class OpKind { kSum, kProd, kMax, kMin, kAvg, kMulSum, kNone };
const char* opName(OpKind op);
std::span<const OpKind> allOps();  // what -o all runs: sum prod max min avg mulsum
std::optional<OpKind> parseOp(std::string_view name);

// Writes the integer v, which must be exactly representable, as one element of `type`.
// Integer types take the low bits of v (two's complement), so modular results encode as the
// library computes them.
void encodeInt(loomDataType_t type, int64_t v, void* out);
// The value of one element, as a double (NaN for NaN patterns, ±inf for infinities).
double decodeValue(loomDataType_t type, const void* in);

// Encodes small integers fast: a table for the narrow floating types, a cast otherwise.
class IntEncoder {
 public:
  explicit IntEncoder(loomDataType_t type);
  void put(int64_t v, void* out) const;

 private:
  loomDataType_t type_;
  size_t bytes_;
  static constexpr int64_t kTableLimit = 1 << 16;  // table holds [-kTableLimit, kTableLimit]
  const uint16_t* table_ = nullptr;                // narrow floats only
};

}  // namespace loom::perf
