// Conformance: what goes wrong is reported, names the peer, and never hangs. Mismatched
// messages, a peer that closes or disappears, misuse of a closed connection, bad arguments.
#include <algorithm>
#include <thread>

#include "harness.h"

namespace loom::transport::testing {
namespace {

class FailureTest : public TransportTest {
 protected:
  void SetUp() override {
    makeWorld();
    p_ = connectPair(*ranks_[0], *ranks_[1], 0);
    both_ =
        Driven{{p_.a.get(), p_.b.get()}, {ranks_[0]->transport.get(), ranks_[1]->transport.get()}};
    // Start from a working connection: one message each way.
    uint8_t x = 1, y = 2;
    ASSERT_TRUE(p_.a->postSend(&x, 1, 0).isOk() && p_.b->postRecv(&y, 1, 0).isOk());
    ASSERT_TRUE(p_.b->postSend(&x, 1, 0).isOk() && p_.a->postRecv(&y, 1, 0).isOk());
    Status s = driveUntil(
        both_, [&] { return completeAll(*p_.a) && completeAll(*p_.b); },
        Deadline::afterMs(kWaitMs));
    ASSERT_TRUE(s.isOk()) << s.toString();
  }
  // Drives both ranks until the receiver (rank 1) fails; returns its error.
  Status receiverError() {
    Status s = driveUntil(
        both_, [] { return false; }, Deadline::afterMs(kWaitMs));
    EXPECT_NE(s.code(), Code::kTimeout) << "no error within the deadline";
    return p_.b->progress();
  }

  ConnectionPair p_;
  Driven both_;
};

TEST_P(FailureTest, TagMismatchIsRemoteErrorNamingPeerAndTags) {
  uint32_t out = 1, in = 0;
  ASSERT_TRUE(p_.a->postSend(&out, 4, 111).isOk());
  ASSERT_TRUE(p_.b->postRecv(&in, 4, 222).isOk());
  Status s = receiverError();
  expectRemoteError(s, {"rank 0", "111", "222"});
  // Sticky: it stays.
  EXPECT_EQ(p_.b->progress().code(), Code::kRemoteError);
  EXPECT_EQ(p_.b->postRecv(&in, 4, 1).code(), Code::kRemoteError);
  EXPECT_EQ(in, 0u);
}

TEST_P(FailureTest, SizeMismatchIsRemoteErrorNamingPeerAndSizes) {
  std::vector<uint8_t> out(300), in(200);
  ASSERT_TRUE(p_.a->postSend(out.data(), out.size(), 5).isOk());
  ASSERT_TRUE(p_.b->postRecv(in.data(), in.size(), 5).isOk());
  Status s = receiverError();
  expectRemoteError(s, {"rank 0", "300", "200"});
}

TEST_P(FailureTest, PeerCloseFailsAPendingReceive) {
  uint32_t in = 0;
  ASSERT_TRUE(p_.b->postRecv(&in, 4, 1).isOk());
  ASSERT_TRUE(p_.a->close(Deadline::afterMs(kWaitMs)).isOk());
  Status s = driveUntil(
      {{p_.b.get()}, {ranks_[1]->transport.get()}}, [] { return false; },
      Deadline::afterMs(kWaitMs));
  expectRemoteError(s, {"rank 0", "closed"});
}

TEST_P(FailureTest, PeerDestroyedFailsAPendingReceive) {
  uint32_t in = 0;
  ASSERT_TRUE(p_.b->postRecv(&in, 4, 1).isOk());
  // Rank 0 disappears without close().
  p_.a.reset();
  ranks_[0].reset();
  Status s = driveUntil(
      {{p_.b.get()}, {ranks_[1]->transport.get()}}, [] { return false; },
      Deadline::afterMs(kWaitMs));
  expectRemoteError(s, {"rank 0"});
}

TEST_P(FailureTest, PeerCloseFailsAPendingSend) {
  std::vector<uint8_t> out(64u << 20);  // larger than any socket buffer
  ASSERT_TRUE(p_.b->close(Deadline::afterMs(kWaitMs)).isOk());
  ASSERT_TRUE(p_.a->postSend(out.data(), out.size(), 1).isOk());
  Status s = driveUntil(
      {{p_.a.get()}, {ranks_[0]->transport.get()}}, [] { return false; },
      Deadline::afterMs(kWaitMs));
  expectRemoteError(s, {"rank 1"});
}

// `closer` connects and closes at once, before its peer has even called connect(); the peer's
// receive must still fail (not wait for the runtime's timeout).
void closeBeforePeerConnects(RankState& closer, RankState& other) {
  Result<std::unique_ptr<Connection>> cc =
      closer.transport->connect(other.context.rank, 0, other.transport->localAddress());
  ASSERT_TRUE(cc.isOk()) << cc.status().toString();
  ASSERT_TRUE((*cc)->close(Deadline::afterMs(kWaitMs)).isOk());
  Result<std::unique_ptr<Connection>> co =
      other.transport->connect(closer.context.rank, 0, closer.transport->localAddress());
  ASSERT_TRUE(co.isOk()) << co.status().toString();
  uint32_t in = 0;
  ASSERT_TRUE((*co)->postRecv(&in, 4, 1).isOk());
  Status s = driveUntil(
      {{co->get()}, {closer.transport.get(), other.transport.get()}}, [] { return false; },
      Deadline::afterMs(kWaitMs));
  expectRemoteError(s, {"rank " + std::to_string(closer.context.rank), "closed"});
}

TEST_P(FailureTest, HigherRankClosedBeforeConnectingFailsAPendingReceive) {
  makeWorld();  // a fresh world without the fixture's connection
  closeBeforePeerConnects(*ranks_[1], *ranks_[0]);
}

TEST_P(FailureTest, LowerRankClosedBeforeConnectingFailsAPendingReceive) {
  makeWorld();
  closeBeforePeerConnects(*ranks_[0], *ranks_[1]);
}

TEST_P(FailureTest, IdleConnectionSurvivesACleanPeerClose) {
  uint32_t out = 7, in = 0;
  ASSERT_TRUE(p_.a->postSend(&out, 4, 1).isOk());
  ASSERT_TRUE(p_.b->postRecv(&in, 4, 1).isOk());
  ASSERT_TRUE(driveUntil(
                  both_, [&] { return completeAll(*p_.a) && completeAll(*p_.b); },
                  Deadline::afterMs(kWaitMs))
                  .isOk());
  ASSERT_TRUE(p_.a->close(Deadline::afterMs(kWaitMs)).isOk());
  // Ranks finish in any order: nothing pending, so nothing is wrong yet.
  Deadline settle = Deadline::afterMs(100);
  while (!settle.expired())
    ASSERT_TRUE(p_.b->progress().isOk());
  // But a receive that can never complete is.
  ASSERT_TRUE(p_.b->postRecv(&in, 4, 2).isOk());
  Status s = driveUntil(
      {{p_.b.get()}, {}}, [] { return false; }, Deadline::afterMs(kWaitMs));
  expectRemoteError(s, {"rank 0", "closed"});
}

TEST_P(FailureTest, CloseDeliversOutstandingSends) {
  constexpr int kCount = 8;
  constexpr size_t kBytes = 4u << 20;
  std::vector<std::vector<uint8_t>> out(kCount), in(kCount);
  for (int i = 0; i < kCount; ++i) {
    out[i].resize(kBytes);
    fillPattern(out[i].data(), kBytes, 50 + i);
    in[i].assign(kBytes, 0);
    ASSERT_TRUE(p_.a->postSend(out[i].data(), kBytes, i).isOk());
    ASSERT_TRUE(p_.b->postRecv(in[i].data(), kBytes, i).isOk());
  }
  uint32_t tail = 99;
  ASSERT_TRUE(p_.a->postSend(&tail, 0, 77).isOk());
  uint32_t tailIn = 0;
  ASSERT_TRUE(p_.b->postRecv(&tailIn, 0, 77).isOk());
  Status closed;
  std::thread t0([&] { closed = p_.a->close(Deadline::afterMs(kWaitMs)); });
  Status s = driveUntil(
      {{p_.b.get()}, {ranks_[1]->transport.get()}}, [&] { return completeAll(*p_.b); },
      Deadline::afterMs(kWaitMs));
  t0.join();
  ASSERT_TRUE(closed.isOk()) << closed.toString();
  ASSERT_TRUE(s.isOk()) << s.toString();
  EXPECT_EQ(p_.a->sendsCompleted(), p_.a->sendsPosted());
  for (int i = 0; i < kCount; ++i)
    EXPECT_EQ(firstMismatch(in[i].data(), kBytes, 50 + i), -1) << "message " << i;
}

TEST_P(FailureTest, BothRanksMayCloseAtOnceWithSendsInFlight) {
  std::vector<uint8_t> out0(16u << 20), out1(16u << 20);
  ASSERT_TRUE(p_.a->postSend(out0.data(), out0.size(), 1).isOk());
  ASSERT_TRUE(p_.b->postSend(out1.data(), out1.size(), 1).isOk());
  Status c0, c1;
  std::thread t0([&] { c0 = p_.a->close(Deadline::afterMs(kWaitMs)); });
  std::thread t1([&] { c1 = p_.b->close(Deadline::afterMs(kWaitMs)); });
  t0.join();
  t1.join();
  // Neither side waits for the other's (abandoned) receive forever: each close ends in time,
  // either delivering or reporting that the peer closed first.
  for (const Status* c : {&c0, &c1})
    EXPECT_TRUE(c->isOk() || c->code() == Code::kRemoteError) << c->toString();
}

TEST_P(FailureTest, ClosedConnectionRefusesNewWorkAndClosesTwice) {
  ASSERT_TRUE(p_.a->close(Deadline::afterMs(kWaitMs)).isOk());
  EXPECT_TRUE(p_.a->close(Deadline::afterMs(kWaitMs)).isOk());
  uint32_t x = 0;
  EXPECT_EQ(p_.a->postSend(&x, 4, 1).code(), Code::kInvalidUsage);
  EXPECT_EQ(p_.a->postRecv(&x, 4, 1).code(), Code::kInvalidUsage);
}

TEST_P(FailureTest, ConnectRejectsBadArguments) {
  Transport& t = *ranks_[0]->transport;
  std::string addr = ranks_[1]->transport->localAddress();
  EXPECT_EQ(t.connect(0, 1, t.localAddress()).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(t.connect(2, 0, addr).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(t.connect(-1, 0, addr).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(t.connect(1, -1, addr).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(t.connect(1, 5, "not an address").status().code(), Code::kInvalidArgument);
  EXPECT_LE(addr.size(), Transport::kMaxAddressBytes);
}

LOOM_INSTANTIATE_FOR_ALL_TRANSPORTS(FailureTest);
LOOM_INSTANTIATE_THROUGH_FAULT_WRAPPER(FailureTest);

TEST(TransportRegistryTest, UnknownNameIsInvalidArgument) {
  TransportContext ctx;
  Result<std::unique_ptr<Transport>> t = createTransport("carrier-pigeon", ctx);
  EXPECT_EQ(t.status().code(), Code::kInvalidArgument);
  EXPECT_NE(t.status().message().find("socket"), std::string::npos) << t.status().toString();
}

TEST(TransportRegistryTest, ListsTheBuiltInTransports) {
  std::vector<std::string> names = transportNames();
  EXPECT_NE(std::find(names.begin(), names.end(), "loopback"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "socket"), names.end());
}

}  // namespace
}  // namespace loom::transport::testing
