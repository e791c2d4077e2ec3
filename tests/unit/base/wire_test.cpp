#include "base/wire.h"

#include <gtest/gtest.h>

namespace loom {
namespace {

TEST(WireTest, RoundTripsEveryField) {
  ByteWriter w;
  w.u8(1);
  w.u32(0xdeadbeef);
  w.i64(-5);
  w.str("host");
  std::vector<uint8_t> b = w.take();
  ByteReader r(b.data(), b.size(), "test");
  uint8_t a;
  uint32_t c;
  int64_t d;
  std::string s;
  ASSERT_TRUE(r.u8(&a).isOk());
  ASSERT_TRUE(r.u32(&c).isOk());
  ASSERT_TRUE(r.i64(&d).isOk());
  ASSERT_TRUE(r.str(&s, 100).isOk());
  EXPECT_TRUE(r.expectEnd().isOk());
  EXPECT_EQ(a, 1);
  EXPECT_EQ(c, 0xdeadbeefu);
  EXPECT_EQ(d, -5);
  EXPECT_EQ(s, "host");
}

TEST(WireTest, TruncatedInputIsAnErrorNotAnOverread) {
  std::vector<uint8_t> b = {1, 2, 3};
  ByteReader r(b.data(), b.size(), "peer info");
  uint64_t v;
  Status s = r.u64(&v);
  EXPECT_EQ(s.code(), Code::kRemoteError);
  EXPECT_NE(s.message().find("peer info"), std::string::npos);
}

TEST(WireTest, HostileStringLengthIsRejectedBeforeAllocating) {
  ByteWriter w;
  w.u32(0xffffffffu);  // claims 4 GiB
  std::vector<uint8_t> b = w.take();
  ByteReader r(b.data(), b.size(), "x");
  std::string s;
  EXPECT_FALSE(r.str(&s, 1 << 20).isOk());
}

TEST(WireTest, TrailingBytesAreReported) {
  std::vector<uint8_t> b = {0, 0, 0, 0, 9};
  ByteReader r(b.data(), b.size(), "x");
  uint32_t v;
  ASSERT_TRUE(r.u32(&v).isOk());
  EXPECT_FALSE(r.expectEnd().isOk());
}

}  // namespace
}  // namespace loom
