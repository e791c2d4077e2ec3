#include "bootstrap/unique_id.h"

#include <gtest/gtest.h>

#include <cstring>

#include "test_util.h"

namespace loom::bootstrap {
namespace {

using testing::randomSecret;

UniqueId sampleId() {
  UniqueId id;
  id.root = SocketAddress::ipv4Loopback(4711);
  id.secret = randomSecret();
  return id;
}

TEST(UniqueIdTest, BytesRoundTripPreservesRootAndSecret) {
  UniqueId id = sampleId();
  uint8_t bytes[kUniqueIdBytes];
  id.toBytes(bytes);
  Result<UniqueId> back = UniqueId::fromBytes(bytes);
  ASSERT_TRUE(back.isOk()) << back.status().toString();
  EXPECT_EQ(back->root.toString(), "127.0.0.1:4711");
  EXPECT_EQ(back->secret, id.secret);
}

TEST(UniqueIdTest, BytesRoundTripPreservesIpv6Root) {
  UniqueId id = sampleId();
  Result<SocketAddress> a = SocketAddress::parse("[::1]:9000");
  ASSERT_TRUE(a.isOk());
  id.root = *a;
  uint8_t bytes[kUniqueIdBytes];
  id.toBytes(bytes);
  Result<UniqueId> back = UniqueId::fromBytes(bytes);
  ASSERT_TRUE(back.isOk()) << back.status().toString();
  EXPECT_EQ(back->root.toString(), "[::1]:9000");
}

TEST(UniqueIdTest, HexRoundTrip) {
  UniqueId id = sampleId();
  std::string hex = id.toHex();
  EXPECT_EQ(hex.size(), 2 * kUniqueIdBytes);
  Result<UniqueId> back = UniqueId::fromHex(hex);
  ASSERT_TRUE(back.isOk()) << back.status().toString();
  EXPECT_EQ(back->toHex(), hex);
}

TEST(UniqueIdTest, RejectsZeroedIdWithHint) {
  uint8_t zero[kUniqueIdBytes] = {};
  Result<UniqueId> r = UniqueId::fromBytes(zero);
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("bad magic"), std::string::npos);
  EXPECT_NE(r.status().message().find("all zeros"), std::string::npos);
}

TEST(UniqueIdTest, RejectsEveryCorruptedByte) {
  uint8_t good[kUniqueIdBytes];
  sampleId().toBytes(good);
  for (size_t i = 0; i < kUniqueIdBytes; ++i) {
    uint8_t bad[kUniqueIdBytes];
    std::memcpy(bad, good, sizeof(bad));
    bad[i] ^= 0x40;
    Result<UniqueId> r = UniqueId::fromBytes(bad);
    ASSERT_FALSE(r.isOk()) << "byte " << i;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    if (i >= 8) {
      EXPECT_NE(r.status().message().find("checksum mismatch"), std::string::npos);
    }
  }
}

TEST(UniqueIdTest, RejectsTruncatedCopy) {
  uint8_t bytes[kUniqueIdBytes];
  sampleId().toBytes(bytes);
  std::memset(bytes + 64, 0, kUniqueIdBytes - 64);  // only the first half arrived
  Result<UniqueId> r = UniqueId::fromBytes(bytes);
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("checksum mismatch"), std::string::npos);

  std::string hex = sampleId().toHex();
  Result<UniqueId> shortHex = UniqueId::fromHex(hex.substr(0, hex.size() - 2));
  ASSERT_FALSE(shortHex.isOk());
  EXPECT_EQ(shortHex.status().code(), Code::kInvalidArgument);
}

TEST(UniqueIdTest, RejectsForeignBytes) {
  uint8_t bytes[kUniqueIdBytes];
  for (size_t i = 0; i < kUniqueIdBytes; ++i)
    bytes[i] = static_cast<uint8_t>(i * 7 + 1);
  Result<UniqueId> r = UniqueId::fromBytes(bytes);
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().toString(), "InvalidArgument: not a loom unique id: bad magic");
}

TEST(UniqueIdTest, BadHexDoesNotEchoTheId) {
  std::string hex = sampleId().toHex();
  hex[100] = 'z';
  Result<UniqueId> r = UniqueId::fromHex(hex);
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(r.status().message().find(hex.substr(0, 32)), std::string::npos);
}

TEST(UniqueIdTest, HashIsStableAndDistinguishesIds) {
  UniqueId a = sampleId();
  UniqueId b = a;
  EXPECT_EQ(a.hash(), b.hash());
  Result<UniqueId> c = UniqueId::fromHex(a.toHex());
  ASSERT_TRUE(c.isOk());
  EXPECT_EQ(a.hash(), c->hash());
  b.secret[0] ^= 1;
  EXPECT_NE(a.hash(), b.hash());
  b = a;
  b.root.setPort(4712);
  EXPECT_NE(a.hash(), b.hash());
}

}  // namespace
}  // namespace loom::bootstrap
