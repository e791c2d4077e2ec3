// Conformance: messages arrive whole, in order, with their tags, in every arrangement the
// runtime uses (many small, zero-byte, huge, many outstanding, both ways, several lanes, posted
// before the connection is up), driven by one thread per rank or one thread for both.
#include <chrono>
#include <cstring>
#include <thread>

#include "harness.h"

namespace loom::transport::testing {
namespace {

class DeliveryTest : public TransportTest {};

size_t sizeOf(int i) {
  return (i % 7 == 0) ? 0 : static_cast<size_t>((i * 131) % 4097);
}

// Rank 0 sends `count` messages (sizes from sizeOf, tag = i) to rank 1 while rank 1 receives
// them, each rank on its own thread; then the payloads are checked.
void sendManyWithThreads(Connection* sender, Transport* sendT, Connection* receiver,
                         Transport* recvT, int count) {
  std::vector<std::vector<uint8_t>> out(count), in(count);
  for (int i = 0; i < count; ++i) {
    out[i].resize(sizeOf(i));
    fillPattern(out[i].data(), out[i].size(), i);
    in[i].assign(sizeOf(i), 0);
  }
  Status sendStatus, recvStatus;
  std::thread t0([&] {
    for (int i = 0; i < count; ++i) {
      sendStatus = sender->postSend(out[i].data(), out[i].size(), i);
      if (!sendStatus.isOk()) return;
    }
    sendStatus = driveUntil(
        {{sender}, {sendT}}, [&] { return completeAll(*sender); }, Deadline::afterMs(kWaitMs));
  });
  std::thread t1([&] {
    for (int i = 0; i < count; ++i) {
      recvStatus = receiver->postRecv(in[i].data(), in[i].size(), i);
      if (!recvStatus.isOk()) return;
    }
    recvStatus = driveUntil(
        {{receiver}, {recvT}}, [&] { return completeAll(*receiver); }, Deadline::afterMs(kWaitMs));
  });
  t0.join();
  t1.join();
  ASSERT_TRUE(sendStatus.isOk()) << sendStatus.toString();
  ASSERT_TRUE(recvStatus.isOk()) << recvStatus.toString();
  for (int i = 0; i < count; ++i)
    ASSERT_EQ(firstMismatch(in[i].data(), in[i].size(), i), -1) << "message " << i;
}

TEST_P(DeliveryTest, ManyMessagesArriveInOrderWithTheirTags) {
  makeWorld();
  ConnectionPair p = connectPair(*ranks_[0], *ranks_[1], 0);
  sendManyWithThreads(p.a.get(), ranks_[0]->transport.get(), p.b.get(), ranks_[1]->transport.get(),
                      3000);
  // And back the other way on the same connection.
  sendManyWithThreads(p.b.get(), ranks_[1]->transport.get(), p.a.get(), ranks_[0]->transport.get(),
                      500);
}

TEST_P(DeliveryTest, ZeroByteMessagesAreRealMessages) {
  makeWorld();
  ConnectionPair p = connectPair(*ranks_[0], *ranks_[1], 0);
  uint8_t one = 42, got = 0;
  for (int i = 0; i < 100; ++i)
    ASSERT_TRUE(p.a->postSend(nullptr, 0, i).isOk());
  ASSERT_TRUE(p.a->postSend(&one, 1, 100).isOk());
  for (int i = 0; i < 100; ++i)
    ASSERT_TRUE(p.b->postRecv(nullptr, 0, i).isOk());
  ASSERT_TRUE(p.b->postRecv(&got, 1, 100).isOk());
  Driven both{{p.a.get(), p.b.get()}, {ranks_[0]->transport.get(), ranks_[1]->transport.get()}};
  Status s = driveUntil(
      both, [&] { return completeAll(*p.a) && completeAll(*p.b); }, Deadline::afterMs(kWaitMs));
  ASSERT_TRUE(s.isOk()) << s.toString();
  EXPECT_EQ(p.b->recvsCompleted(), 101u);
  EXPECT_EQ(got, 42);
}

TEST_P(DeliveryTest, LargeMessageArrivesIntact) {
  makeWorld();
  ConnectionPair p = connectPair(*ranks_[0], *ranks_[1], 0);
  constexpr size_t kBytes = 64u << 20;
  std::vector<uint8_t> out(kBytes), in(kBytes, 0);
  fillPattern(out.data(), kBytes, 7);
  ASSERT_TRUE(p.a->postSend(out.data(), kBytes, 7).isOk());
  ASSERT_TRUE(p.b->postRecv(in.data(), kBytes, 7).isOk());
  Status s0, s1;
  std::thread t0([&] {
    s0 = driveUntil(
        {{p.a.get()}, {ranks_[0]->transport.get()}}, [&] { return completeAll(*p.a); },
        Deadline::afterMs(kWaitMs));
  });
  s1 = driveUntil(
      {{p.b.get()}, {ranks_[1]->transport.get()}}, [&] { return completeAll(*p.b); },
      Deadline::afterMs(kWaitMs));
  t0.join();
  ASSERT_TRUE(s0.isOk()) << s0.toString();
  ASSERT_TRUE(s1.isOk()) << s1.toString();
  EXPECT_EQ(firstMismatch(in.data(), kBytes, 7), -1);
}

TEST_P(DeliveryTest, ThousandOperationsPostedBeforeAnyProgress) {
  makeWorld();
  ConnectionPair p = connectPair(*ranks_[0], *ranks_[1], 0);
  constexpr int kCount = 1000;
  constexpr size_t kBytes = 1000;
  std::vector<uint8_t> out0(kCount * kBytes), out1(kCount * kBytes);
  std::vector<uint8_t> in0(kCount * kBytes), in1(kCount * kBytes);
  fillPattern(out0.data(), out0.size(), 100);
  fillPattern(out1.data(), out1.size(), 101);
  for (int i = 0; i < kCount; ++i) {
    size_t bytes = (i % 3 == 0) ? 0 : kBytes;
    ASSERT_TRUE(p.a->postSend(out0.data() + i * kBytes, bytes, i).isOk());
    ASSERT_TRUE(p.b->postSend(out1.data() + i * kBytes, bytes, i).isOk());
    ASSERT_TRUE(p.a->postRecv(in1.data() + i * kBytes, bytes, i).isOk());
    ASSERT_TRUE(p.b->postRecv(in0.data() + i * kBytes, bytes, i).isOk());
  }
  // One thread drives both ranks.
  Driven both{{p.a.get(), p.b.get()}, {ranks_[0]->transport.get(), ranks_[1]->transport.get()}};
  Status s = driveUntil(
      both, [&] { return completeAll(*p.a) && completeAll(*p.b); }, Deadline::afterMs(kWaitMs));
  ASSERT_TRUE(s.isOk()) << s.toString();
  for (int i = 0; i < kCount; ++i) {
    if (i % 3 == 0) continue;
    ASSERT_EQ(std::memcmp(in0.data() + i * kBytes, out0.data() + i * kBytes, kBytes), 0) << i;
    ASSERT_EQ(std::memcmp(in1.data() + i * kBytes, out1.data() + i * kBytes, kBytes), 0) << i;
  }
}

TEST_P(DeliveryTest, BothDirectionsAtOnceWithLargeMessages) {
  makeWorld();
  ConnectionPair p = connectPair(*ranks_[0], *ranks_[1], 0);
  constexpr size_t kBytes = 8u << 20;
  constexpr int kCount = 4;
  std::vector<std::vector<uint8_t>> out(2 * kCount), in(2 * kCount);
  for (int i = 0; i < 2 * kCount; ++i) {
    out[i].resize(kBytes);
    fillPattern(out[i].data(), kBytes, 1000 + i);
    in[i].assign(kBytes, 0);
  }
  Status st[2];
  auto rank = [&](int r, Connection* c, Transport* t) {
    for (int i = 0; i < kCount; ++i) {
      st[r] = c->postSend(out[r * kCount + i].data(), kBytes, i);
      if (st[r].isOk()) st[r] = c->postRecv(in[(1 - r) * kCount + i].data(), kBytes, i);
      if (!st[r].isOk()) return;
    }
    st[r] = driveUntil(
        {{c}, {t}}, [&] { return completeAll(*c); }, Deadline::afterMs(kWaitMs));
  };
  std::thread t0(rank, 0, p.a.get(), ranks_[0]->transport.get());
  std::thread t1(rank, 1, p.b.get(), ranks_[1]->transport.get());
  t0.join();
  t1.join();
  ASSERT_TRUE(st[0].isOk()) << st[0].toString();
  ASSERT_TRUE(st[1].isOk()) << st[1].toString();
  for (int i = 0; i < 2 * kCount; ++i)
    EXPECT_EQ(firstMismatch(in[i].data(), kBytes, 1000 + i), -1) << "message " << i;
}

TEST_P(DeliveryTest, LanesAreIndependentStreams) {
  makeWorld();
  constexpr int kLanes = 4;
  constexpr int kPerLane = 50;
  std::vector<ConnectionPair> lanes;
  for (int l = 0; l < kLanes; ++l)
    lanes.push_back(connectPair(*ranks_[0], *ranks_[1], l));
  std::vector<uint64_t> out(kLanes * kPerLane), in(kLanes * kPerLane, 0);
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = 0xabc000 + i;
  // Sends go lane 0 first; receives are posted lane 3 first. Each lane's tags restart at 0.
  for (int l = 0; l < kLanes; ++l)
    for (int i = 0; i < kPerLane; ++i)
      ASSERT_TRUE(lanes[l].a->postSend(&out[l * kPerLane + i], 8, i).isOk());
  for (int l = kLanes - 1; l >= 0; --l)
    for (int i = 0; i < kPerLane; ++i)
      ASSERT_TRUE(lanes[l].b->postRecv(&in[l * kPerLane + i], 8, i).isOk());
  Driven both{{}, {ranks_[0]->transport.get(), ranks_[1]->transport.get()}};
  for (int l = kLanes - 1; l >= 0; --l) {
    both.connections.push_back(lanes[l].b.get());
    both.connections.push_back(lanes[l].a.get());
  }
  Status s = driveUntil(
      both,
      [&] {
        for (auto& l : lanes)
          if (!completeAll(*l.a) || !completeAll(*l.b)) return false;
        return true;
      },
      Deadline::afterMs(kWaitMs));
  ASSERT_TRUE(s.isOk()) << s.toString();
  EXPECT_EQ(in, out);
  for (int l = 0; l < kLanes; ++l)
    EXPECT_EQ(lanes[l].b->lane(), l);
}

// Operations are posted right after connect(), while the peer has not even called connect()
// yet; the late rank only runs its transport's progress() for a while first.
void postBeforeConnected(RankState& early, RankState& late, bool earlySends) {
  Result<std::unique_ptr<Connection>> ce =
      early.transport->connect(late.context.rank, 0, late.transport->localAddress());
  ASSERT_TRUE(ce.isOk()) << ce.status().toString();
  uint32_t out = 0x600d, in = 0;
  Connection* e = ce->get();
  ASSERT_TRUE((earlySends ? e->postSend(&out, 4, 9) : e->postRecv(&in, 4, 9)).isOk());
  Deadline settle = Deadline::afterMs(50);
  while (!settle.expired()) {
    ASSERT_TRUE(e->progress().isOk());
    ASSERT_TRUE(early.transport->progress().isOk());
    ASSERT_TRUE(late.transport->progress().isOk());
  }
  EXPECT_FALSE(completeAll(*e));
  Result<std::unique_ptr<Connection>> cl =
      late.transport->connect(early.context.rank, 0, early.transport->localAddress());
  ASSERT_TRUE(cl.isOk()) << cl.status().toString();
  Connection* l = cl->get();
  ASSERT_TRUE((earlySends ? l->postRecv(&in, 4, 9) : l->postSend(&out, 4, 9)).isOk());
  Driven both{{e, l}, {early.transport.get(), late.transport.get()}};
  Status s = driveUntil(
      both, [&] { return completeAll(*e) && completeAll(*l); }, Deadline::afterMs(kWaitMs));
  ASSERT_TRUE(s.isOk()) << s.toString();
  EXPECT_EQ(in, out);
}

TEST_P(DeliveryTest, LowerRankPostsBeforeHigherRankConnects) {
  makeWorld();
  postBeforeConnected(*ranks_[0], *ranks_[1], true);
}

TEST_P(DeliveryTest, HigherRankPostsBeforeLowerRankConnects) {
  makeWorld();
  postBeforeConnected(*ranks_[1], *ranks_[0], true);
}

TEST_P(DeliveryTest, ReceiverPostsBeforeSenderConnects) {
  makeWorld();
  postBeforeConnected(*ranks_[0], *ranks_[1], false);
}

TEST_P(DeliveryTest, FourRanksAllPairsExchange) {
  constexpr int kRanks = 4;
  makeWorld(kRanks);
  // conns[r][q] is rank r's connection to rank q.
  std::vector<std::vector<std::unique_ptr<Connection>>> conns(kRanks);
  for (auto& row : conns)
    row.resize(kRanks);
  for (int r = 0; r < kRanks; ++r)
    for (int q = r + 1; q < kRanks; ++q) {
      ConnectionPair p = connectPair(*ranks_[r], *ranks_[q], 0);
      conns[r][q] = std::move(p.a);
      conns[q][r] = std::move(p.b);
    }
  std::vector<uint64_t> out(kRanks * kRanks), in(kRanks * kRanks, 0);
  Status st[kRanks];
  std::vector<std::thread> threads;
  for (int r = 0; r < kRanks; ++r)
    threads.emplace_back([&, r] {
      Driven d{{}, {ranks_[r]->transport.get()}};
      for (int q = 0; q < kRanks; ++q) {
        if (q == r) continue;
        out[r * kRanks + q] = 1000 * r + q;
        st[r] = conns[r][q]->postSend(&out[r * kRanks + q], 8, 5);
        if (st[r].isOk()) st[r] = conns[r][q]->postRecv(&in[q * kRanks + r], 8, 5);
        if (!st[r].isOk()) return;
        d.connections.push_back(conns[r][q].get());
      }
      st[r] = driveUntil(
          d,
          [&] {
            for (Connection* c : d.connections)
              if (!completeAll(*c)) return false;
            return true;
          },
          Deadline::afterMs(kWaitMs));
    });
  for (auto& t : threads)
    t.join();
  for (int r = 0; r < kRanks; ++r)
    ASSERT_TRUE(st[r].isOk()) << st[r].toString();
  EXPECT_EQ(in, out);
}

LOOM_INSTANTIATE_FOR_ALL_TRANSPORTS(DeliveryTest);
LOOM_INSTANTIATE_THROUGH_FAULT_WRAPPER(DeliveryTest);

}  // namespace
}  // namespace loom::transport::testing
