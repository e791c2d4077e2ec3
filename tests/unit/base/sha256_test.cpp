#include "base/sha256.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "base/random.h"

namespace loom {
namespace {

std::string hexDigest(const Digest& d) {
  return toHex(d.data(), d.size());
}

TEST(Sha256Test, MatchesFipsVectors) {
  Sha256 empty;
  EXPECT_EQ(hexDigest(empty.finish()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 abc;
  abc.update("abc", 3);
  EXPECT_EQ(hexDigest(abc.finish()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 two;
  std::string m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  two.update(m.data(), 10);
  two.update(m.data() + 10, m.size() - 10);
  EXPECT_EQ(hexDigest(two.finish()),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256Test, HmacMatchesRfc4231) {
  std::string key(20, '\x0b');
  std::string msg = "Hi There";
  EXPECT_EQ(hexDigest(hmacSha256(key.data(), key.size(), msg.data(), msg.size())),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  std::string key2 = "Jefe", msg2 = "what do ya want for nothing?";
  EXPECT_EQ(hexDigest(hmacSha256(key2.data(), key2.size(), msg2.data(), msg2.size())),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Sha256Test, DigestEqualComparesEveryByte) {
  Digest a{}, b{};
  EXPECT_TRUE(digestEqual(a, b));
  b[31] = 1;
  EXPECT_FALSE(digestEqual(a, b));
}

TEST(RandomTest, HexRoundTripsAndRejectsGarbage) {
  uint8_t bytes[16], back[16];
  ASSERT_TRUE(secureRandom(bytes, sizeof(bytes)).isOk());
  std::string hex = toHex(bytes, sizeof(bytes));
  ASSERT_TRUE(fromHex(hex, back, sizeof(back)).isOk());
  EXPECT_EQ(std::memcmp(bytes, back, 16), 0);
  EXPECT_FALSE(fromHex("zz", back, 1).isOk());
  EXPECT_FALSE(fromHex("abc", back, 2).isOk());
}

}  // namespace
}  // namespace loom
