#include "values.h"

#include <cstring>

#include "base/half.h"

namespace loom::test {

size_t typeSize(loomDataType_t t) {
  switch (t) {
    case loomInt8:
    case loomUint8:
    case loomFloat8e4m3:
    case loomFloat8e5m2:
      return 1;
    case loomFloat16:
    case loomBfloat16:
      return 2;
    case loomInt32:
    case loomUint32:
    case loomFloat32:
      return 4;
    default:
      return 8;
  }
}

const char* typeName(loomDataType_t t) {
  static const char* names[] = {"int8", "uint8", "int32",  "uint32",   "int64",  "uint64",
                                "half", "float", "double", "bfloat16", "f8e4m3", "f8e5m2"};
  return names[t];
}

const char* opName(int op) {
  static const char* names[] = {"sum", "prod", "max", "min", "avg", "premulsum"};
  return names[op];
}

int exactRange(loomDataType_t t) {
  switch (t) {
    case loomInt8:
      return 127;
    case loomUint8:
      return 255;
    case loomFloat16:
      return 2048;
    case loomBfloat16:
      return 256;
    case loomFloat8e4m3:
      return 16;
    case loomFloat8e5m2:
      return 8;
    default:
      return 1000000;
  }
}

void storeValue(loomDataType_t t, void* buf, size_t i, double v) {
  auto* b = static_cast<uint8_t*>(buf) + i * typeSize(t);
  switch (t) {
    case loomInt8:
      *reinterpret_cast<int8_t*>(b) = static_cast<int8_t>(static_cast<int64_t>(v));
      break;
    case loomUint8:
      *b = static_cast<uint8_t>(static_cast<int64_t>(v));
      break;
    case loomInt32:
      *reinterpret_cast<int32_t*>(b) = static_cast<int32_t>(v);
      break;
    case loomUint32:
      *reinterpret_cast<uint32_t*>(b) = static_cast<uint32_t>(v);
      break;
    case loomInt64:
      *reinterpret_cast<int64_t*>(b) = static_cast<int64_t>(v);
      break;
    case loomUint64:
      *reinterpret_cast<uint64_t*>(b) = static_cast<uint64_t>(v);
      break;
    case loomFloat16:
      *reinterpret_cast<uint16_t*>(b) = half::floatToFp16(static_cast<float>(v));
      break;
    case loomFloat32:
      *reinterpret_cast<float*>(b) = static_cast<float>(v);
      break;
    case loomFloat64:
      *reinterpret_cast<double*>(b) = v;
      break;
    case loomBfloat16:
      *reinterpret_cast<uint16_t*>(b) = half::floatToBf16(static_cast<float>(v));
      break;
    case loomFloat8e4m3:
      *b = half::floatToE4m3(static_cast<float>(v));
      break;
    case loomFloat8e5m2:
      *b = half::floatToE5m2(static_cast<float>(v));
      break;
    default:
      break;
  }
}

double loadValue(loomDataType_t t, const void* buf, size_t i) {
  const auto* b = static_cast<const uint8_t*>(buf) + i * typeSize(t);
  switch (t) {
    case loomInt8:
      return *reinterpret_cast<const int8_t*>(b);
    case loomUint8:
      return *b;
    case loomInt32:
      return *reinterpret_cast<const int32_t*>(b);
    case loomUint32:
      return *reinterpret_cast<const uint32_t*>(b);
    case loomInt64:
      return static_cast<double>(*reinterpret_cast<const int64_t*>(b));
    case loomUint64:
      return static_cast<double>(*reinterpret_cast<const uint64_t*>(b));
    case loomFloat16:
      return half::fp16ToFloat(*reinterpret_cast<const uint16_t*>(b));
    case loomFloat32:
      return *reinterpret_cast<const float*>(b);
    case loomFloat64:
      return *reinterpret_cast<const double*>(b);
    case loomBfloat16:
      return half::bf16ToFloat(*reinterpret_cast<const uint16_t*>(b));
    case loomFloat8e4m3:
      return half::e4m3ToFloat(*b);
    case loomFloat8e5m2:
      return half::e5m2ToFloat(*b);
    default:
      return 0;
  }
}

double reductionInput(int op, int rank, size_t i) {
  switch (op) {
    case 1:
      return 1 + ((static_cast<size_t>(rank) + i) % 3 == 0 ? 1 : 0);  // prod: 1 or 2
    case 2:
    case 3:
      return static_cast<double>((static_cast<size_t>(rank) * 3 + i) % 7);  // max/min
    default:
      return static_cast<double>((static_cast<size_t>(rank) + i) % 2);  // sums: 0/1
  }
}

void expectedReduction(loomDataType_t t, int op, int nranks, size_t i, void* out) {
  double acc = reductionInput(op, 0, i) * (op == 5 ? 2 : 1);
  uint64_t prod = static_cast<uint64_t>(reductionInput(1, 0, i));
  for (int r = 1; r < nranks; ++r) {
    double v = reductionInput(op, r, i);
    if (op == 1)
      prod *= static_cast<uint64_t>(v);
    else if (op == 2)
      acc = v > acc ? v : acc;
    else if (op == 3)
      acc = v < acc ? v : acc;
    else
      acc += op == 5 ? 2 * v : v;
  }
  if (op == 1) {
    // Integer products wrap in the type's width; floats are exact (powers of two <= 256).
    uint8_t bytes[8] = {};
    std::memcpy(bytes, &prod, 8);
    if (t == loomInt8 || t == loomUint8 || t == loomInt32 || t == loomUint32 || t == loomInt64 ||
        t == loomUint64) {
      std::memcpy(out, bytes, typeSize(t));
      return;
    }
    acc = static_cast<double>(prod);
  }
  if (op == 4) {  // Avg: exact sum, then one division in the compute precision
    switch (t) {
      case loomInt8:
      case loomUint8:
      case loomInt32:
      case loomUint32:
      case loomInt64:
      case loomUint64:
        acc = static_cast<double>(static_cast<int64_t>(acc) / nranks);
        break;
      case loomFloat64:
        acc = acc / nranks;
        break;
      default:
        acc = static_cast<double>(static_cast<float>(acc) / static_cast<float>(nranks));
    }
  }
  storeValue(t, out, 0, acc);
}

double payload(loomDataType_t t, int rank, size_t i) {
  return static_cast<double>((static_cast<size_t>(rank) * 37 + i * 11 + 1) %
                             static_cast<size_t>(exactRange(t) + 1));
}

}  // namespace loom::test
