#include "base/half.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace loom::half {
namespace {

// The nearest representable value among `codes` (ties to the even code), saturating to the
// largest finite magnitude - the rule loom's narrowing must follow.
template <typename Decode>
uint32_t nearestCode(float f, int ncodes, Decode decode, uint32_t maxFinite) {
  uint32_t best = 0;
  double bestErr = std::numeric_limits<double>::infinity();
  for (int c = 0; c < ncodes; ++c) {
    float v = decode(static_cast<uint32_t>(c));
    if (!std::isfinite(v) || (c & 0x7f) > static_cast<int>(maxFinite)) continue;
    double err = std::fabs(static_cast<double>(v) - f);
    if (err < bestErr || (err == bestErr && (c & 1) == 0 && std::signbit(v) == std::signbit(f))) {
      best = static_cast<uint32_t>(c);
      bestErr = err;
    }
  }
  return best;
}

TEST(HalfTest, Fp16RoundTripsEveryPattern) {
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = fp16ToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(fp16ToFloat(floatToFp16(f)))) << h;
      continue;
    }
    EXPECT_EQ(floatToFp16(f), h) << "pattern " << h;
  }
}

TEST(HalfTest, Fp16NarrowingMatchesTheCompiler) {
  std::mt19937 rng(1);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    uint32_t u = bits(rng);
    // Bias towards the half range, including subnormals and overflow.
    u = (u & 0x807fffffu) | ((100u + (u >> 23) % 60u) << 23);
    float f = bitsFloat(u);
    _Float16 ref = static_cast<_Float16>(f);
    uint16_t refBits;
    std::memcpy(&refBits, &ref, 2);
    ASSERT_EQ(floatToFp16(f), refBits) << "float " << f;
  }
  EXPECT_EQ(floatToFp16(65504.0f), 0x7bff);
  EXPECT_EQ(floatToFp16(65520.0f), 0x7c00);  // rounds to infinity
  EXPECT_EQ(floatToFp16(-0.0f), 0x8000);
}

TEST(HalfTest, Bf16RoundsToNearestEven) {
  EXPECT_EQ(floatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(floatToBf16(bitsFloat(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(floatToBf16(bitsFloat(0x3f818000u)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(floatToBf16(bitsFloat(0x3f808001u)), 0x3f81);
  EXPECT_TRUE(std::isnan(bf16ToFloat(floatToBf16(std::nanf("")))));
  EXPECT_EQ(bf16ToFloat(floatToBf16(std::numeric_limits<float>::infinity())),
            std::numeric_limits<float>::infinity());
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = bf16ToFloat(static_cast<uint16_t>(h));
    if (!std::isnan(f)) {
      EXPECT_EQ(floatToBf16(f), h);
    }
  }
}

TEST(HalfTest, Fp8DecodesTheOcpTables) {
  EXPECT_EQ(e4m3ToFloat(0x7e), 448.0f);
  EXPECT_TRUE(std::isnan(e4m3ToFloat(0x7f)));
  EXPECT_EQ(e4m3ToFloat(0x01), std::ldexp(1.0f, -9));
  EXPECT_EQ(e4m3ToFloat(0x38), 1.0f);
  EXPECT_EQ(e5m2ToFloat(0x7b), 57344.0f);
  EXPECT_TRUE(std::isinf(e5m2ToFloat(0x7c)));
  EXPECT_TRUE(std::isnan(e5m2ToFloat(0x7e)));
  EXPECT_EQ(e5m2ToFloat(0x01), std::ldexp(1.0f, -16));
  EXPECT_EQ(e5m2ToFloat(0x3c), 1.0f);
}

TEST(HalfTest, Fp8RoundTripsAndSaturates) {
  for (uint32_t c = 0; c < 256; ++c) {
    float a = e4m3ToFloat(static_cast<uint8_t>(c));
    if (!std::isnan(a)) {
      EXPECT_EQ(floatToE4m3(a), c) << c;
    }
    float b = e5m2ToFloat(static_cast<uint8_t>(c));
    if (std::isfinite(b)) {
      EXPECT_EQ(floatToE5m2(b), c) << c;
    }
  }
  EXPECT_EQ(floatToE4m3(1e9f), 0x7e);
  EXPECT_EQ(floatToE4m3(-1e9f), 0xfe);
  EXPECT_EQ(floatToE5m2(std::numeric_limits<float>::infinity()), 0x7b);
  EXPECT_TRUE(std::isnan(e4m3ToFloat(floatToE4m3(std::nanf("")))));
  EXPECT_TRUE(std::isnan(e5m2ToFloat(floatToE5m2(std::nanf("")))));
}

TEST(HalfTest, Fp8NarrowingPicksTheNearestValue) {
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> mag(-20.0f, 10.0f);
  for (int i = 0; i < 20000; ++i) {
    float f = std::ldexp(1.0f + static_cast<float>(i % 97) / 97.0f, static_cast<int>(mag(rng)));
    if (i & 1) f = -f;
    uint32_t want4 = nearestCode(
        f, 256, [](uint32_t c) { return e4m3ToFloat(static_cast<uint8_t>(c)); }, 0x7e);
    uint32_t want5 = nearestCode(
        f, 256, [](uint32_t c) { return e5m2ToFloat(static_cast<uint8_t>(c)); }, 0x7b);
    ASSERT_EQ(e4m3ToFloat(floatToE4m3(f)), e4m3ToFloat(static_cast<uint8_t>(want4))) << f;
    ASSERT_EQ(e5m2ToFloat(floatToE5m2(f)), e5m2ToFloat(static_cast<uint8_t>(want5))) << f;
  }
}

}  // namespace
}  // namespace loom::half
