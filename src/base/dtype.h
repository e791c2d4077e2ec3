// DataType and RedOp: what loom moves and how it combines it.
//
// Enum values equal the C ABI's (loomDataType_t, loomRedOp_t), which equal NCCL's, so an
// NCCL program's ncclFloat is loom's kFloat32 without translation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace loom {

enum class DataType : int {
  kInt8 = 0,
  kUint8 = 1,
  kInt32 = 2,
  kUint32 = 3,
  kInt64 = 4,
  kUint64 = 5,
  kFloat16 = 6,
  kFloat32 = 7,
  kFloat64 = 8,
  kBfloat16 = 9,
  kFloat8e4m3 = 10,
  kFloat8e5m2 = 11,
};
inline constexpr int kNumDataTypes = 12;

enum class RedOpKind : int {
  kSum = 0,
  kProd = 1,
  kMax = 2,
  kMin = 3,
  kAvg = 4,
  kPreMulSum = 5,
};
inline constexpr int kNumRedOps = 6;

// A reduction as the runtime sees it: the kind plus, for PreMulSum, the scalar (stored as the
// bytes of one element of the collective's datatype).
struct RedOp {
  RedOpKind kind = RedOpKind::kSum;
  alignas(8) unsigned char scalar[8] = {};
  // PreMulSum with a device-resident scalar (loomScalarDevice): where it lives on the device;
  // a call copies it, ordered on its stream, and the copy (scalarAt) is what the call uses.
  const void* deviceScalar = nullptr;
  const void* scalarAt = nullptr;  // when set, read instead of `scalar` when the call runs
};

bool isValidDataType(int value);
size_t dataTypeSize(DataType type);
bool isFloatingPoint(DataType type);
// "float32", "bfloat16" … (nccl-tests spells them the same way).
const char* dataTypeName(DataType type);
// Accepts loom's names and nccl-tests' short ones ("float", "half", "bf16", "int32", "f8e4m3"…).
std::optional<DataType> parseDataType(std::string_view name);

bool isValidRedOpKind(int value);
// "sum", "prod", "max", "min", "avg", "premulsum".
const char* redOpName(RedOpKind op);
std::optional<RedOpKind> parseRedOp(std::string_view name);

}  // namespace loom
