// The socket transport's listener faces the network: whatever connects to it without proving
// the job's secret (garbage, a wrong HMAC, another communicator, a client that says nothing) is
// dropped, and the real peer still gets through.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "base/fd.h"
#include "base/socket.h"
#include "harness.h"
#include "transports/socket/wire.h"

namespace loom::transport::testing {
namespace {

using namespace ::loom::transport::socket;

class SocketHandshakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    uint64_t hash = freshCommHash();
    r0_ = makeRank("socket", 0, 2, hash);
    r1_ = makeRank("socket", 1, 2, hash);
    ASSERT_TRUE(r0_ && r1_);
    std::string wire = r1_->transport->localAddress();
    ASSERT_EQ(wire.size(), SocketAddress::kWireBytes);
    Result<SocketAddress> a =
        SocketAddress::fromWire(reinterpret_cast<const uint8_t*>(wire.data()));
    ASSERT_TRUE(a.isOk());
    listener_ = *a;
    // Rank 1 waits for rank 0, so its listener is live while the intruders knock.
    Result<std::unique_ptr<Connection>> c =
        r1_->transport->connect(0, 0, r0_->transport->localAddress());
    ASSERT_TRUE(c.isOk()) << c.status().toString();
    c1_ = std::move(c).value();
  }

  // A raw TCP client of rank 1's listener.
  UniqueFd dial() {
    Result<UniqueFd> fd = connectTcp(listener_, Deadline::afterMs(kWaitMs));
    EXPECT_TRUE(fd.isOk()) << fd.status().toString();
    return fd.isOk() ? std::move(fd).value() : UniqueFd();
  }

  // Reads exactly n bytes while driving rank 1; false on EOF or deadline.
  bool readWhileDriving(int fd, uint8_t* out, size_t n) {
    size_t done = 0;
    Deadline deadline = Deadline::afterMs(kWaitMs);
    while (done < n && !deadline.expired()) {
      EXPECT_TRUE(r1_->transport->progress().isOk());
      ssize_t got = ::recv(fd, out + done, n - done, MSG_DONTWAIT);
      if (got == 0) return false;
      if (got > 0) done += static_cast<size_t>(got);
    }
    return done == n;
  }

  // True when rank 1 closes the raw client's socket within the deadline.
  bool closedByListener(int fd) {
    Deadline deadline = Deadline::afterMs(kWaitMs);
    uint8_t buf[256];
    while (!deadline.expired()) {
      EXPECT_TRUE(r1_->transport->progress().isOk());
      EXPECT_TRUE(c1_->progress().isOk());
      ssize_t got = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (got == 0 || (got < 0 && errno == ECONNRESET)) return true;
    }
    return false;
  }

  void sendProof(int fd, uint64_t commHash, uint32_t rank, const std::array<uint8_t, 16>& secret) {
    uint8_t msg[kChallengeMessageBytes];
    ASSERT_TRUE(readWhileDriving(fd, msg, sizeof(msg)));
    Challenge challenge;
    ASSERT_TRUE(decodeChallenge(msg, &challenge));
    Proof proof{commHash, rank, 0, proofMac(secret.data(), challenge, commHash, rank, 0)};
    uint8_t out[kProofMessageBytes];
    encodeProof(proof, out);
    ASSERT_EQ(::send(fd, out, sizeof(out), MSG_NOSIGNAL), static_cast<ssize_t>(sizeof(out)));
  }

  // The real rank 0 connects and a message goes through.
  void expectRealPeerConnects() {
    Result<std::unique_ptr<Connection>> c0 =
        r0_->transport->connect(1, 0, r1_->transport->localAddress());
    ASSERT_TRUE(c0.isOk()) << c0.status().toString();
    uint64_t out = 0xfeedface, in = 0;
    ASSERT_TRUE((*c0)->postSend(&out, 8, 3).isOk());
    ASSERT_TRUE(c1_->postRecv(&in, 8, 3).isOk());
    Driven both{{c0->get(), c1_.get()}, {r0_->transport.get(), r1_->transport.get()}};
    Status s = driveUntil(
        both, [&] { return completeAll(**c0) && completeAll(*c1_); }, Deadline::afterMs(kWaitMs));
    ASSERT_TRUE(s.isOk()) << s.toString();
    EXPECT_EQ(in, out);
  }

  std::unique_ptr<RankState> r0_, r1_;
  std::unique_ptr<Connection> c1_;
  SocketAddress listener_;
};

TEST_F(SocketHandshakeTest, ListensOnLoopbackWhenAskedFor) {
  EXPECT_TRUE(listener_.isLoopback()) << listener_.toString();
  EXPECT_NE(listener_.port(), 0);
}

TEST_F(SocketHandshakeTest, GarbageIsDroppedAndTheRealPeerStillConnects) {
  UniqueFd fd = dial();
  const char junk[] = "GET / HTTP/1.1\r\nHost: loom\r\n\r\n0123456789abcdef0123456789abcdef";
  ASSERT_EQ(::send(fd.get(), junk, sizeof(junk), MSG_NOSIGNAL), static_cast<ssize_t>(sizeof(junk)));
  EXPECT_TRUE(closedByListener(fd.get()));
  expectRealPeerConnects();
}

TEST_F(SocketHandshakeTest, WrongSecretIsDroppedAndTheRealPeerStillConnects) {
  UniqueFd fd = dial();
  std::array<uint8_t, 16> wrong = testSecret();
  wrong[3] ^= 1;
  sendProof(fd.get(), r1_->context.commHash, 0, wrong);
  EXPECT_TRUE(closedByListener(fd.get()));
  expectRealPeerConnects();
}

TEST_F(SocketHandshakeTest, OtherCommunicatorIsDropped) {
  UniqueFd fd = dial();
  sendProof(fd.get(), r1_->context.commHash + 1, 0, testSecret());
  EXPECT_TRUE(closedByListener(fd.get()));
  expectRealPeerConnects();
}

TEST_F(SocketHandshakeTest, HigherRankClaimIsDropped) {
  UniqueFd fd = dial();
  sendProof(fd.get(), r1_->context.commHash, 1, testSecret());  // rank 1 never dials rank 1
  EXPECT_TRUE(closedByListener(fd.get()));
  expectRealPeerConnects();
}

TEST_F(SocketHandshakeTest, SilentAndHalfwayClientsDoNotBlockTheRealPeer) {
  UniqueFd silent = dial();
  UniqueFd halfway = dial();
  uint8_t msg[kChallengeMessageBytes];
  ASSERT_TRUE(readWhileDriving(halfway.get(), msg, sizeof(msg)));
  ASSERT_EQ(::send(halfway.get(), msg, 5, MSG_NOSIGNAL), 5);  // a few bytes, then nothing
  expectRealPeerConnects();
}

}  // namespace
}  // namespace loom::transport::testing
