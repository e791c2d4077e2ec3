#include "types.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace loom::perf {
namespace {

// The narrow floating formats: exponent bits, mantissa bits, bias, and whether the all-ones
// exponent means infinity/NaN (IEEE-like) or is a normal binade (E4M3 "fn").
struct MiniFloat {
  int expBits, manBits, bias;
  bool ieee;
};
constexpr MiniFloat kHalf{5, 10, 15, true};
constexpr MiniFloat kBf16{8, 7, 127, true};
constexpr MiniFloat kE4m3{4, 3, 7, false};
constexpr MiniFloat kE5m2{5, 2, 15, true};

const MiniFloat* miniFloatOf(loomDataType_t t) {
  switch (t) {
    case loomFloat16:
      return &kHalf;
    case loomBfloat16:
      return &kBf16;
    case loomFloat8e4m3:
      return &kE4m3;
    case loomFloat8e5m2:
      return &kE5m2;
    default:
      return nullptr;
  }
}

// Round-to-nearest-even encoding of an integer value (|v| >= 1 or 0, so never subnormal).
// Overflow: infinity for IEEE-like formats; E4M3 saturates to its largest finite value.
uint16_t encodeMini(const MiniFloat& f, int64_t v) {
  const uint16_t sign = v < 0 ? static_cast<uint16_t>(1u << (f.expBits + f.manBits)) : 0;
  if (v == 0) return 0;
  double mag = std::fabs(static_cast<double>(v));
  int e = 0;
  const double frac = std::frexp(mag, &e);  // mag = frac * 2^e, frac in [0.5, 1)
  --e;                                      // mag = (2*frac) * 2^e
  double scaled = std::nearbyint(2.0 * frac * std::ldexp(1.0, f.manBits));
  if (scaled >= std::ldexp(1.0, f.manBits + 1)) {
    scaled /= 2;
    ++e;
  }
  const int expField = e + f.bias;
  const int maxExp = (1 << f.expBits) - 1;
  const uint32_t man = static_cast<uint32_t>(scaled) & ((1u << f.manBits) - 1);
  if (f.ieee && expField >= maxExp) return sign | static_cast<uint16_t>(maxExp << f.manBits);
  if (!f.ieee && (expField > maxExp || (expField == maxExp && man == (1u << f.manBits) - 1)))
    return sign | static_cast<uint16_t>((maxExp << f.manBits) | ((1u << f.manBits) - 2));
  return sign | static_cast<uint16_t>((expField << f.manBits) | man);
}

double decodeMini(const MiniFloat& f, uint32_t bits) {
  const uint32_t man = bits & ((1u << f.manBits) - 1);
  const uint32_t exp = (bits >> f.manBits) & ((1u << f.expBits) - 1);
  const bool neg = (bits >> (f.expBits + f.manBits)) & 1;
  const uint32_t maxExp = (1u << f.expBits) - 1;
  double v;
  if (f.ieee && exp == maxExp) {
    v = man ? NAN : INFINITY;
  } else if (!f.ieee && exp == maxExp && man == (1u << f.manBits) - 1) {
    v = NAN;
  } else if (exp == 0) {
    v = std::ldexp(static_cast<double>(man), 1 - f.bias - f.manBits);
  } else {
    v = std::ldexp(1.0 + std::ldexp(static_cast<double>(man), -f.manBits),
                   static_cast<int>(exp) - f.bias);
  }
  return neg ? -v : v;
}

const TypeInfo kTypes[] = {
    {loomInt8, "int8", 1, false, true, 127, 6},
    {loomUint8, "uint8", 1, false, false, 127, 7},  // 127: sums stay below the 0xA5 sentinel
    {loomInt32, "int32", 4, false, true, 1 << 24, 30},
    {loomUint32, "uint32", 4, false, false, 1 << 24, 30},
    {loomInt64, "int64", 8, false, true, 1 << 24, 30},
    {loomUint64, "uint64", 8, false, false, 1 << 24, 30},
    {loomFloat16, "half", 2, true, true, 2048, 15},
    {loomFloat32, "float", 4, true, true, 1 << 24, 30},
    {loomFloat64, "double", 8, true, true, 1 << 24, 30},
    {loomBfloat16, "bfloat16", 2, true, true, 256, 15},
    {loomFloat8e4m3, "f8e4m3", 1, true, true, 16, 8},
    {loomFloat8e5m2, "f8e5m2", 1, true, true, 8, 15},
};
const loomDataType_t kTypeOrder[] = {loomInt8,    loomUint8,    loomInt32,      loomUint32,
                                     loomInt64,   loomUint64,   loomFloat16,    loomFloat32,
                                     loomFloat64, loomBfloat16, loomFloat8e4m3, loomFloat8e5m2};

struct Alias {
  const char* name;
  loomDataType_t type;
};
const Alias kAliases[] = {
    {"char", loomInt8},           {"int", loomInt32},       {"fp16", loomFloat16},
    {"float16", loomFloat16},     {"f16", loomFloat16},     {"fp32", loomFloat32},
    {"float32", loomFloat32},     {"f32", loomFloat32},     {"fp64", loomFloat64},
    {"float64", loomFloat64},     {"f64", loomFloat64},     {"bf16", loomBfloat16},
    {"fp8_e4m3", loomFloat8e4m3}, {"e4m3", loomFloat8e4m3}, {"float8e4m3", loomFloat8e4m3},
    {"fp8_e5m2", loomFloat8e5m2}, {"e5m2", loomFloat8e5m2}, {"float8e5m2", loomFloat8e5m2},
};

const OpKind kOps[] = {OpKind::kSum, OpKind::kProd, OpKind::kMax,
                       OpKind::kMin, OpKind::kAvg,  OpKind::kMulSum};

const uint16_t* tableFor(loomDataType_t type) {
  static std::vector<uint16_t> tables[loomNumTypes];
  static const bool built = [] {
    for (loomDataType_t t : kTypeOrder) {
      const MiniFloat* f = miniFloatOf(t);
      if (f == nullptr) continue;
      std::vector<uint16_t>& table = tables[t];
      table.resize(2 * (1 << 16) + 1);
      for (int64_t v = -(1 << 16); v <= (1 << 16); ++v)
        table[static_cast<size_t>(v + (1 << 16))] = encodeMini(*f, v);
    }
    return true;
  }();
  (void)built;
  return miniFloatOf(type) ? tables[type].data() : nullptr;
}

}  // namespace

const TypeInfo& typeInfo(loomDataType_t type) {
  for (const TypeInfo& info : kTypes)
    if (info.type == type) return info;
  std::abort();  // every loomDataType_t below loomNumTypes is in the table
}

std::span<const loomDataType_t> allTypes() {
  return kTypeOrder;
}

std::optional<loomDataType_t> parseType(std::string_view name) {
  for (const TypeInfo& info : kTypes)
    if (name == info.name) return info.type;
  for (const Alias& alias : kAliases)
    if (name == alias.name) return alias.type;
  return std::nullopt;
}

const char* opName(OpKind op) {
  switch (op) {
    case OpKind::kSum:
      return "sum";
    case OpKind::kProd:
      return "prod";
    case OpKind::kMax:
      return "max";
    case OpKind::kMin:
      return "min";
    case OpKind::kAvg:
      return "avg";
    case OpKind::kMulSum:
      return "mulsum";
    case OpKind::kNone:
      return "none";
  }
  return "?";
}

std::span<const OpKind> allOps() {
  return kOps;
}

std::optional<OpKind> parseOp(std::string_view name) {
  for (OpKind op : kOps)
    if (name == opName(op)) return op;
  if (name == "premulsum") return OpKind::kMulSum;
  return std::nullopt;
}

void encodeInt(loomDataType_t type, int64_t v, void* out) {
  if (const MiniFloat* f = miniFloatOf(type)) {
    const uint16_t bits = encodeMini(*f, v);
    std::memcpy(out, &bits, typeInfo(type).bytes);  // little-endian: fp8 is the low byte
    return;
  }
  switch (type) {
    case loomFloat32: {
      const float x = static_cast<float>(v);
      std::memcpy(out, &x, 4);
      return;
    }
    case loomFloat64: {
      const double x = static_cast<double>(v);
      std::memcpy(out, &x, 8);
      return;
    }
    default: {
      const uint64_t bits = static_cast<uint64_t>(v);
      std::memcpy(out, &bits, typeInfo(type).bytes);  // low bytes (little-endian)
      return;
    }
  }
}

double decodeValue(loomDataType_t type, const void* in) {
  if (const MiniFloat* f = miniFloatOf(type)) {
    uint16_t bits = 0;
    std::memcpy(&bits, in, typeInfo(type).bytes);
    return decodeMini(*f, bits);
  }
  switch (type) {
    case loomFloat32: {
      float x;
      std::memcpy(&x, in, 4);
      return x;
    }
    case loomFloat64: {
      double x;
      std::memcpy(&x, in, 8);
      return x;
    }
    case loomInt8:
      return *static_cast<const int8_t*>(in);
    case loomUint8:
      return *static_cast<const uint8_t*>(in);
    default: {
      const TypeInfo& info = typeInfo(type);
      uint64_t bits = 0;
      std::memcpy(&bits, in, info.bytes);
      if (info.bytes == 4 && info.isSigned) return static_cast<int32_t>(bits);
      if (info.bytes == 8 && info.isSigned) return static_cast<double>(static_cast<int64_t>(bits));
      return static_cast<double>(bits);
    }
  }
}

IntEncoder::IntEncoder(loomDataType_t type)
    : type_(type), bytes_(typeInfo(type).bytes), table_(tableFor(type)) {}

void IntEncoder::put(int64_t v, void* out) const {
  if (table_ != nullptr && v >= -kTableLimit && v <= kTableLimit) {
    const uint16_t bits = table_[v + kTableLimit];
    if (bytes_ == 1)
      *static_cast<uint8_t*>(out) = static_cast<uint8_t>(bits);
    else
      std::memcpy(out, &bits, 2);
    return;
  }
  switch (type_) {
    case loomInt8:
    case loomUint8:
      *static_cast<uint8_t*>(out) = static_cast<uint8_t>(v);
      return;
    case loomInt32:
    case loomUint32: {
      const uint32_t x = static_cast<uint32_t>(v);
      std::memcpy(out, &x, 4);
      return;
    }
    case loomFloat32: {
      const float x = static_cast<float>(v);
      std::memcpy(out, &x, 4);
      return;
    }
    default:
      encodeInt(type_, v, out);
  }
}

}  // namespace loom::perf
