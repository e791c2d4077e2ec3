#include "base/dtype.h"

#include <algorithm>
#include <string>

namespace loom {

namespace {
struct TypeInfo {
  const char* name;
  size_t size;
  bool floating;
  const char* aliases[3];
};
constexpr TypeInfo kTypes[kNumDataTypes] = {
    {"int8", 1, false, {"char", "i8", nullptr}},
    {"uint8", 1, false, {"u8", nullptr, nullptr}},
    {"int32", 4, false, {"int", "i32", nullptr}},
    {"uint32", 4, false, {"u32", nullptr, nullptr}},
    {"int64", 8, false, {"i64", nullptr, nullptr}},
    {"uint64", 8, false, {"u64", nullptr, nullptr}},
    {"half", 2, true, {"float16", "fp16", "f16"}},
    {"float", 4, true, {"float32", "fp32", "f32"}},
    {"double", 8, true, {"float64", "fp64", "f64"}},
    {"bfloat16", 2, true, {"bf16", nullptr, nullptr}},
    {"f8e4m3", 1, true, {"float8e4m3", "fp8e4m3", "e4m3"}},
    {"f8e5m2", 1, true, {"float8e5m2", "fp8e5m2", "e5m2"}},
};
constexpr const char* kOps[kNumRedOps] = {"sum", "prod", "max", "min", "avg", "premulsum"};

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), ::tolower);
  return out;
}
}  // namespace

bool isValidDataType(int value) {
  return value >= 0 && value < kNumDataTypes;
}
size_t dataTypeSize(DataType type) {
  return kTypes[static_cast<int>(type)].size;
}
bool isFloatingPoint(DataType type) {
  return kTypes[static_cast<int>(type)].floating;
}
const char* dataTypeName(DataType type) {
  return kTypes[static_cast<int>(type)].name;
}

std::optional<DataType> parseDataType(std::string_view name) {
  std::string n = lower(name);
  for (int i = 0; i < kNumDataTypes; ++i) {
    if (n == kTypes[i].name) return static_cast<DataType>(i);
    for (const char* alias : kTypes[i].aliases)
      if (alias && n == alias) return static_cast<DataType>(i);
  }
  return std::nullopt;
}

bool isValidRedOpKind(int value) {
  return value >= 0 && value < kNumRedOps;
}
const char* redOpName(RedOpKind op) {
  return kOps[static_cast<int>(op)];
}

std::optional<RedOpKind> parseRedOp(std::string_view name) {
  std::string n = lower(name);
  for (int i = 0; i < kNumRedOps; ++i)
    if (n == kOps[i]) return static_cast<RedOpKind>(i);
  return std::nullopt;
}

}  // namespace loom
