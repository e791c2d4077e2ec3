#include "base/reduce.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <vector>

#include "base/half.h"
#include "base/reduce_table.h"

namespace loom {
namespace {

using kernels::KernelTable;

// Reference semantics, element by element, in double (exact for every type's float widening).
double load(DataType t, const uint8_t* p) {
  switch (t) {
    case DataType::kInt8:
      return *reinterpret_cast<const int8_t*>(p);
    case DataType::kUint8:
      return *p;
    case DataType::kInt32:
      return *reinterpret_cast<const int32_t*>(p);
    case DataType::kUint32:
      return *reinterpret_cast<const uint32_t*>(p);
    case DataType::kInt64:
      return static_cast<double>(*reinterpret_cast<const int64_t*>(p));
    case DataType::kUint64:
      return static_cast<double>(*reinterpret_cast<const uint64_t*>(p));
    case DataType::kFloat16:
      return half::fp16ToFloat(*reinterpret_cast<const uint16_t*>(p));
    case DataType::kFloat32:
      return *reinterpret_cast<const float*>(p);
    case DataType::kFloat64:
      return *reinterpret_cast<const double*>(p);
    case DataType::kBfloat16:
      return half::bf16ToFloat(*reinterpret_cast<const uint16_t*>(p));
    case DataType::kFloat8e4m3:
      return half::e4m3ToFloat(*p);
    case DataType::kFloat8e5m2:
      return half::e5m2ToFloat(*p);
  }
  return 0;
}

// Small integer-valued inputs: every sum/product of a few stays exact in every type.
void fillSmall(DataType t, uint8_t* p, size_t n, std::mt19937* rng, bool forProd) {
  std::uniform_int_distribution<int> d(forProd ? 1 : 0, forProd ? 2 : 3);
  const size_t es = dataTypeSize(t);
  for (size_t i = 0; i < n; ++i) {
    int v = d(*rng);
    uint8_t* e = p + i * es;
    switch (t) {
      case DataType::kInt8:
        *reinterpret_cast<int8_t*>(e) = static_cast<int8_t>(v - (forProd ? 0 : 1));
        break;
      case DataType::kUint8:
        *e = static_cast<uint8_t>(v);
        break;
      case DataType::kInt32:
        *reinterpret_cast<int32_t*>(e) = v - (forProd ? 0 : 1);
        break;
      case DataType::kUint32:
        *reinterpret_cast<uint32_t*>(e) = static_cast<uint32_t>(v);
        break;
      case DataType::kInt64:
        *reinterpret_cast<int64_t*>(e) = v - (forProd ? 0 : 1);
        break;
      case DataType::kUint64:
        *reinterpret_cast<uint64_t*>(e) = static_cast<uint64_t>(v);
        break;
      case DataType::kFloat16:
        *reinterpret_cast<uint16_t*>(e) = half::floatToFp16(static_cast<float>(v) - 1.5f);
        break;
      case DataType::kFloat32:
        *reinterpret_cast<float*>(e) = static_cast<float>(v) - 1.5f;
        break;
      case DataType::kFloat64:
        *reinterpret_cast<double*>(e) = v - 1.5;
        break;
      case DataType::kBfloat16:
        *reinterpret_cast<uint16_t*>(e) = half::floatToBf16(static_cast<float>(v) - 1.5f);
        break;
      case DataType::kFloat8e4m3:
        *e = half::floatToE4m3(static_cast<float>(v) - 1.5f);
        break;
      case DataType::kFloat8e5m2:
        *e = half::floatToE5m2(static_cast<float>(v) - 1.5f);
        break;
    }
  }
}

double apply(int op, double a, double b) {
  switch (op) {
    case 0:
      return a + b;
    case 1:
      return a * b;
    case 2:
      return a > b ? a : b;
    default:
      return a < b ? a : b;
  }
}

std::vector<std::pair<const char*, const KernelTable*>> tables() {
  std::vector<std::pair<const char*, const KernelTable*>> t = {
      {"baseline", &kernels::baseline::table()}};
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c") &&
      __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2"))
    t.push_back({"avx2", &kernels::avx2::table()});
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    t.push_back({"avx512", &kernels::avx512::table()});
  return t;
}

TEST(ReduceTest, EveryKernelSetMatchesTheReferenceForEveryTypeAndOp) {
  std::mt19937 rng(7);
  for (auto [isa, table] : tables()) {
    for (int t = 0; t < kNumDataTypes; ++t) {
      DataType type = static_cast<DataType>(t);
      const size_t es = dataTypeSize(type);
      for (int op = 0; op < 4; ++op) {
        for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{33},
                         size_t{1000}, size_t{4099}}) {
          std::vector<uint8_t> a(n * es + 1), b(n * es + 1), d(n * es + 1), d2(n * es + 1);
          fillSmall(type, a.data(), n, &rng, op == 1);
          fillSmall(type, b.data(), n, &rng, op == 1);
          table->reduce2[t][op](d.data(), a.data(), b.data(), n);
          const void* srcs[2] = {a.data(), b.data()};
          table->reduceN[t][op](d2.data(), srcs, 2, n);
          for (size_t i = 0; i < n; ++i) {
            double want = apply(op, load(type, &a[i * es]), load(type, &b[i * es]));
            ASSERT_EQ(load(type, &d[i * es]), want)
                << isa << " " << dataTypeName(type) << " op " << op << " n " << n << " i " << i;
            ASSERT_EQ(load(type, &d2[i * es]), want) << isa << " reduceN " << dataTypeName(type);
          }
        }
      }
    }
  }
}

TEST(ReduceTest, HalfTypesAccumulateInFloatAndRoundOnce) {
  // 2048 + 1 + 1 in fp16: pairwise rounding loses both ones (2049 rounds to 2048), while
  // accumulating in float gives 2050 exactly.
  uint16_t a = half::floatToFp16(2048.0f), one = half::floatToFp16(1.0f), out;
  const void* srcs[3] = {&a, &one, &one};
  reduceN(DataType::kFloat16, RedOpKind::kSum, &out, srcs, 3, 1);
  EXPECT_EQ(half::fp16ToFloat(out), 2050.0f);
}

TEST(ReduceTest, MaxAndMinPropagateNanWhateverTheOrder) {
  for (auto [isa, table] : tables()) {
    std::vector<float> a(17, 1.0f), b(17, 2.0f), d(17);
    a[3] = std::nanf("");
    b[9] = std::nanf("");
    for (int op : {2, 3}) {
      table->reduce2[static_cast<int>(DataType::kFloat32)][op](d.data(), a.data(), b.data(), 17);
      EXPECT_TRUE(std::isnan(d[3])) << isa;
      EXPECT_TRUE(std::isnan(d[9])) << isa;
      table->reduce2[static_cast<int>(DataType::kFloat32)][op](d.data(), b.data(), a.data(), 17);
      EXPECT_TRUE(std::isnan(d[3])) << isa;
      EXPECT_TRUE(std::isnan(d[9])) << isa;
    }
    std::vector<uint16_t> h(17, half::floatToFp16(1.0f)), g(17, half::floatToFp16(2.0f)), o(17);
    h[5] = 0x7e00;
    g[11] = 0x7e00;
    table->reduce2[static_cast<int>(DataType::kFloat16)][2](o.data(), h.data(), g.data(), 17);
    EXPECT_TRUE(std::isnan(half::fp16ToFloat(o[5]))) << isa;
    EXPECT_TRUE(std::isnan(half::fp16ToFloat(o[11]))) << isa;
  }
}

TEST(ReduceTest, IntegerSumAndProdWrap) {
  int8_t a = 127, b = 1, d;
  reduce2(DataType::kInt8, RedOpKind::kSum, &d, &a, &b, 1);
  EXPECT_EQ(d, -128);
  int64_t x = INT64_MAX, y = 2, z;
  reduce2(DataType::kInt64, RedOpKind::kProd, &z, &x, &y, 1);
  EXPECT_EQ(z, -2);
}

TEST(ReduceTest, AvgDividesAndPreMulScales) {
  std::vector<int32_t> v = {7, 8, -9};
  divideInPlace(DataType::kInt32, v.data(), 3, 2);
  EXPECT_EQ(v, (std::vector<int32_t>{3, 4, -4}));
  std::vector<float> f = {3.0f, 6.0f};
  divideInPlace(DataType::kFloat32, f.data(), 2, 3);
  EXPECT_EQ(f, (std::vector<float>{1.0f, 2.0f}));
  double s = 0.5, src[2] = {4.0, -2.0}, dst[2];
  scale(DataType::kFloat64, dst, src, &s, 2);
  EXPECT_EQ(dst[0], 2.0);
  EXPECT_EQ(dst[1], -1.0);
}

TEST(ReduceTest, InPlaceAliasingIsAllowed) {
  std::vector<double> a = {1, 2, 3}, b = {10, 20, 30};
  reduce2(DataType::kFloat64, RedOpKind::kSum, a.data(), a.data(), b.data(), 3);
  EXPECT_EQ(a, (std::vector<double>{11, 22, 33}));
}

}  // namespace
}  // namespace loom
