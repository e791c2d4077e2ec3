#include "bootstrap/tcp_store.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "bootstrap/tcp_store_wire.h"
#include "test_util.h"

namespace loom::bootstrap {
namespace {

using namespace loom::bootstrap::testing;

class TcpStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    secret_ = randomSecret();
    server_ = startServer(secret_, options_);
    ASSERT_NE(server_, nullptr);
    id_ = idFor(*server_, secret_);
  }
  void TearDown() override {
    if (server_) server_->stop();
  }
  void restart(TcpStoreServer::Options options) {
    server_->stop();
    options_ = options;
    server_ = startServer(secret_, options_);
    ASSERT_NE(server_, nullptr);
    id_ = idFor(*server_, secret_);
  }

  // A raw connection that has read the server's greeting (and, if `authenticate`, completed
  // the handshake as rank 0 of 1000), for tests that speak the protocol by hand.
  UniqueFd rawConnection(bool authenticate) {
    Deadline d = Deadline::afterMs(kConnectMs);
    Result<UniqueFd> fd = connectTcp(id_.root, d);
    EXPECT_TRUE(fd.isOk());
    uint8_t hello[wire::kServerHelloBytes];
    EXPECT_TRUE(recvAll(fd->get(), hello, sizeof(hello), d, "root").isOk());
    if (authenticate) {
      wire::Nonce challenge, mine{};
      std::memcpy(challenge.data(), hello + 8, 16);
      auto msg = wire::encodeClientHello(secret_, challenge, mine, 0, 1000);
      EXPECT_TRUE(sendAll(fd->get(), msg.data(), msg.size(), d, "root").isOk());
      uint8_t welcome[wire::kWelcomeBytes];
      EXPECT_TRUE(recvAll(fd->get(), welcome, sizeof(welcome), d, "root").isOk());
    }
    return std::move(fd).value();
  }

  // True if the server closes fd within the deadline (it reads EOF or a reset).
  static bool closedByPeer(int fd, int64_t ms) {
    Deadline d = Deadline::afterMs(ms);
    uint8_t buf[256];
    for (;;) {
      Status s = recvAll(fd, buf, 1, d, "root");
      if (s.code() == Code::kRemoteError) return true;
      if (!s.isOk()) return false;
    }
  }

  // The store still serves a well-behaved client.
  void expectHealthy() {
    auto c = connectOrDie(id_, 0, 1000);
    ASSERT_NE(c, nullptr);
    ASSERT_TRUE(c->set("health", bytesOf("ok")).isOk());
    Result<Bytes> v = c->get("health", Deadline::afterMs(kConnectMs));
    ASSERT_TRUE(v.isOk()) << v.status().toString();
    EXPECT_EQ(stringOf(*v), "ok");
  }

  Secret secret_;
  TcpStoreServer::Options options_;
  std::shared_ptr<TcpStoreServer> server_;
  UniqueId id_;
};

TEST_F(TcpStoreTest, SetThenGetReturnsValue) {
  auto c = connectOrDie(id_, 0, 1);
  ASSERT_TRUE(c->set("a", bytesOf("hello")).isOk());
  ASSERT_TRUE(c->set("empty", Bytes()).isOk());
  Result<Bytes> v = c->get("a", Deadline::afterMs(kConnectMs));
  ASSERT_TRUE(v.isOk()) << v.status().toString();
  EXPECT_EQ(stringOf(*v), "hello");
  Result<Bytes> e = c->get("empty", Deadline::afterMs(kConnectMs));
  ASSERT_TRUE(e.isOk());
  EXPECT_TRUE(e->empty());
}

TEST_F(TcpStoreTest, LargeValueRoundTrips) {
  auto c = connectOrDie(id_, 0, 1);
  Bytes big(8 << 20);
  for (size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<uint8_t>(i * 31 + 7);
  ASSERT_TRUE(c->set("big", big).isOk());
  Result<Bytes> v = c->get("big", Deadline::afterMs(kConnectMs));
  ASSERT_TRUE(v.isOk()) << v.status().toString();
  EXPECT_TRUE(*v == big);
}

TEST_F(TcpStoreTest, GetWaitsForLaterSet) {
  auto reader = connectOrDie(id_, 0, 2);
  auto writer = connectOrDie(id_, 1, 2);
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_TRUE(writer->set("late", bytesOf("now")).isOk());
  });
  Result<Bytes> v = reader->get("late", Deadline::afterMs(kConnectMs));
  t.join();
  ASSERT_TRUE(v.isOk()) << v.status().toString();
  EXPECT_EQ(stringOf(*v), "now");
}

TEST_F(TcpStoreTest, GetTimesOutNamingTheKey) {
  auto c = connectOrDie(id_, 0, 1);
  int64_t start = nowNs();
  Result<Bytes> v = c->get("never/set", Deadline::afterMs(200));
  ASSERT_FALSE(v.isOk());
  EXPECT_EQ(v.status().code(), Code::kTimeout);
  EXPECT_NE(v.status().message().find("never/set"), std::string::npos);
  EXPECT_LT(nowNs() - start, int64_t{3000} * 1000000);
}

TEST_F(TcpStoreTest, GetIsAbortedByCancelFlag) {
  auto c = connectOrDie(id_, 0, 1);
  std::atomic<bool> cancel{false};
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    cancel = true;
  });
  Result<Bytes> v = c->get("never", Deadline::afterMs(10000), &cancel);
  t.join();
  ASSERT_FALSE(v.isOk());
  EXPECT_EQ(v.status().code(), Code::kAborted);
}

TEST_F(TcpStoreTest, LateReplyAfterTimeoutDoesNotConfuseLaterRequests) {
  auto c = connectOrDie(id_, 0, 1);
  ASSERT_FALSE(c->get("k", Deadline::afterMs(100)).isOk());
  ASSERT_TRUE(c->set("k", bytesOf("v1")).isOk());
  ASSERT_TRUE(c->set("other", bytesOf("v2")).isOk());
  Result<Bytes> v = c->get("other", Deadline::afterMs(kConnectMs));
  ASSERT_TRUE(v.isOk());
  EXPECT_EQ(stringOf(*v), "v2");
}

TEST_F(TcpStoreTest, TryGetDoesNotWait) {
  auto c = connectOrDie(id_, 0, 1);
  Result<std::optional<Bytes>> missing = c->tryGet("x");
  ASSERT_TRUE(missing.isOk());
  EXPECT_FALSE(missing->has_value());
  ASSERT_TRUE(c->set("x", bytesOf("1")).isOk());
  Result<std::optional<Bytes>> present = c->tryGet("x");
  ASSERT_TRUE(present.isOk());
  ASSERT_TRUE(present->has_value());
  EXPECT_EQ(stringOf(**present), "1");
}

TEST_F(TcpStoreTest, AddIsAtomicAcrossClients) {
  constexpr int kClients = 6, kAdds = 50;
  // A job of kClients + 1 ranks, so the root outlives the adders (it stops once every rank of
  // the job has come and gone).
  std::vector<std::thread> threads;
  for (int r = 0; r < kClients; ++r)
    threads.emplace_back([&, r] {
      auto c = connectOrDie(id_, r, kClients + 1);
      ASSERT_NE(c, nullptr);
      for (int i = 0; i < kAdds; ++i)
        EXPECT_TRUE(c->add("counter", 2).isOk());
    });
  for (auto& t : threads)
    t.join();
  auto c = connectOrDie(id_, kClients, kClients + 1);
  ASSERT_NE(c, nullptr);
  Result<int64_t> v = c->add("counter", 0);
  ASSERT_TRUE(v.isOk());
  EXPECT_EQ(*v, 2 * kClients * kAdds);
  Result<int64_t> neg = c->add("counter", -1000);
  ASSERT_TRUE(neg.isOk());
  EXPECT_EQ(*neg, 2 * kClients * kAdds - 1000);
}

TEST_F(TcpStoreTest, ErasePrefixRemovesOnlyMatchingKeys) {
  auto c = connectOrDie(id_, 0, 1);
  for (const char* k : {"comm1/a", "comm1/b/c", "comm10/a", "comm2/a"})
    ASSERT_TRUE(c->set(k, bytesOf(k)).isOk());
  ASSERT_TRUE(c->erasePrefix("comm1/").isOk());
  EXPECT_FALSE(c->tryGet("comm1/a")->has_value());
  EXPECT_FALSE(c->tryGet("comm1/b/c")->has_value());
  EXPECT_TRUE(c->tryGet("comm10/a")->has_value());
  EXPECT_TRUE(c->tryGet("comm2/a")->has_value());
}

TEST_F(TcpStoreTest, ManyConcurrentClientsExchangeKeys) {
  constexpr int kRanks = 16;
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int r = 0; r < kRanks; ++r)
    threads.emplace_back([&, r] {
      auto c = connectOrDie(id_, r, kRanks);
      if (!c) return;
      EXPECT_TRUE(c->set("k/" + std::to_string(r), bytesOf(std::to_string(r * r))).isOk());
      for (int p = 0; p < kRanks; ++p) {
        Result<Bytes> v = c->get("k/" + std::to_string(p), Deadline::afterMs(10000));
        if (v.isOk() && stringOf(*v) == std::to_string(p * p)) ++good;
      }
    });
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(good.load(), kRanks * kRanks);
}

TEST_F(TcpStoreTest, ThreadsSharingOneClientDoNotBlockEachOther) {
  auto c = connectOrDie(id_, 0, 1);
  std::thread waiter([&] {
    Result<Bytes> v = c->get("shared", Deadline::afterMs(10000));
    ASSERT_TRUE(v.isOk()) << v.status().toString();
    EXPECT_EQ(stringOf(*v), "x");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // With one request at a time per client this set would wait behind the parked get.
  ASSERT_TRUE(c->set("shared", bytesOf("x")).isOk());
  waiter.join();
}

TEST_F(TcpStoreTest, RejectsClientWithWrongSecret) {
  auto good = connectOrDie(id_, 0, 2);
  ASSERT_TRUE(good->set("before", bytesOf("1")).isOk());
  UniqueId wrong = id_;
  wrong.secret[3] ^= 0x10;
  Result<std::shared_ptr<TcpStoreClient>> bad =
      TcpStoreClient::connect(wrong, 1, 2, Deadline::afterMs(kConnectMs));
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().code(), Code::kInvalidUsage);
  EXPECT_NE(bad.status().message().find("rejected this unique id"), std::string::npos);
  EXPECT_NE(bad.status().message().find(id_.root.toString()), std::string::npos);
  EXPECT_GE(server_->droppedConnections(), 1u);
  // The existing client and new good clients are unaffected.
  Result<Bytes> v = good->get("before", Deadline::afterMs(kConnectMs));
  ASSERT_TRUE(v.isOk()) << v.status().toString();
  auto again = connectOrDie(id_, 1, 2);
  ASSERT_NE(again, nullptr);
  EXPECT_TRUE(again->get("before", Deadline::afterMs(kConnectMs)).isOk());
}

TEST_F(TcpStoreTest, RejectsRankThatDisagreesOnNranks) {
  auto first = connectOrDie(id_, 0, 4);
  Result<std::shared_ptr<TcpStoreClient>> other =
      TcpStoreClient::connect(id_, 1, 8, Deadline::afterMs(kConnectMs));
  ASSERT_FALSE(other.isOk());
  EXPECT_EQ(other.status().code(), Code::kInvalidUsage);
  EXPECT_NE(other.status().message().find("4 ranks"), std::string::npos);
}

TEST_F(TcpStoreTest, DropsRawGarbageWithoutHarmingServer) {
  auto bystander = connectOrDie(id_, 0, 1000);
  UniqueFd raw = rawConnection(false);
  uint8_t junk[wire::kClientHelloBytes];
  std::memset(junk, 'G', sizeof(junk));
  ASSERT_TRUE(sendAll(raw.get(), junk, sizeof(junk), Deadline::afterMs(kConnectMs), "r").isOk());
  EXPECT_TRUE(closedByPeer(raw.get(), kConnectMs));
  EXPECT_TRUE(bystander->set("still", bytesOf("here")).isOk());
  expectHealthy();
}

TEST_F(TcpStoreTest, DropsAuthenticatedClientSendingOversizedLength) {
  UniqueFd raw = rawConnection(true);
  uint8_t len[4] = {0xff, 0xff, 0xff, 0xf0};
  ASSERT_TRUE(sendAll(raw.get(), len, sizeof(len), Deadline::afterMs(kConnectMs), "r").isOk());
  EXPECT_TRUE(closedByPeer(raw.get(), kConnectMs));
  expectHealthy();
}

TEST_F(TcpStoreTest, DropsRequestWithOversizedKey) {
  UniqueFd raw = rawConnection(true);
  std::vector<uint8_t> frame;
  std::string key(wire::kMaxKeyBytes + 1, 'k');
  wire::appendRequest(&frame, wire::Op::kSet, 1, key, nullptr, 0);
  ASSERT_TRUE(
      sendAll(raw.get(), frame.data(), frame.size(), Deadline::afterMs(kConnectMs), "r").isOk());
  EXPECT_TRUE(closedByPeer(raw.get(), kConnectMs));
  expectHealthy();
}

TEST_F(TcpStoreTest, ParkedGetOfVanishedClientIsForgotten) {
  {
    UniqueFd raw = rawConnection(true);
    std::vector<uint8_t> frame;
    wire::appendRequest(&frame, wire::Op::kGet, 7, "parked", nullptr, 0);
    ASSERT_TRUE(
        sendAll(raw.get(), frame.data(), frame.size(), Deadline::afterMs(kConnectMs), "r").isOk());
  }  // closed with its GET parked
  auto c = connectOrDie(id_, 1, 1000);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(c->set("parked", bytesOf("v")).isOk());
  expectHealthy();
}

TEST_F(TcpStoreTest, ClientRefusesOversizedKeyAndValueBeforeSending) {
  auto c = connectOrDie(id_, 0, 1);
  EXPECT_EQ(c->set(std::string(wire::kMaxKeyBytes + 1, 'k'), Bytes()).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(c->set("v", Bytes(wire::kMaxValueBytes + 1)).code(), Code::kInvalidArgument);
  EXPECT_TRUE(c->set("v", bytesOf("fine")).isOk());
}

TEST_F(TcpStoreTest, DropsSilentConnectionAfterHandshakeTimeout) {
  TcpStoreServer::Options o;
  o.handshakeTimeoutMs = 200;
  restart(o);
  UniqueFd raw = rawConnection(false);
  EXPECT_TRUE(closedByPeer(raw.get(), kConnectMs));
  expectHealthy();
}

TEST_F(TcpStoreTest, RefusesConnectionsBeyondTheLimit) {
  TcpStoreServer::Options o;
  o.maxClients = 2;
  restart(o);
  auto a = connectOrDie(id_, 0, 3);
  auto b = connectOrDie(id_, 1, 3);
  Result<std::shared_ptr<TcpStoreClient>> c =
      TcpStoreClient::connect(id_, 2, 3, Deadline::afterMs(kConnectMs));
  ASSERT_FALSE(c.isOk());
  EXPECT_EQ(c.status().code(), Code::kRemoteError);
  EXPECT_TRUE(a->set("x", Bytes()).isOk());
}

TEST_F(TcpStoreTest, ServerStopsAfterAllRanksDisconnect) {
  {
    auto a = connectOrDie(id_, 0, 3);
    auto b = connectOrDie(id_, 1, 3);
    ASSERT_TRUE(a->set("x", Bytes()).isOk());
  }
  // Two of three ranks came and went: the third may still come.
  EXPECT_FALSE(server_->waitStopped(Deadline::afterMs(300)));
  auto c = connectOrDie(id_, 2, 3);
  EXPECT_TRUE(c->get("x", Deadline::afterMs(kConnectMs)).isOk());
  c.reset();
  EXPECT_TRUE(server_->waitStopped(Deadline::afterMs(kConnectMs)));
  EXPECT_EQ(server_->state(), TcpStoreServer::State::kFinished);
}

TEST_F(TcpStoreTest, ServerStopsWhenNobodyComes) {
  TcpStoreServer::Options o;
  o.idleTimeoutMs = 200;
  restart(o);
  EXPECT_TRUE(server_->waitStopped(Deadline::afterMs(kConnectMs)));
  EXPECT_EQ(server_->state(), TcpStoreServer::State::kIdle);
}

TEST_F(TcpStoreTest, RootGoingAwayIsRemoteErrorNamingIt) {
  auto c = connectOrDie(id_, 0, 2);
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    server_->stop();
  });
  Result<Bytes> v = c->get("never", Deadline::afterMs(10000));
  stopper.join();
  ASSERT_FALSE(v.isOk());
  EXPECT_EQ(v.status().code(), Code::kRemoteError);
  EXPECT_NE(v.status().message().find(id_.root.toString()), std::string::npos);
  EXPECT_EQ(c->set("after", Bytes()).code(), Code::kRemoteError);  // sticky
}

TEST(TcpStoreClientTest, DeadRootIsTimeoutWithActionableMessage) {
  UniqueId id;
  id.root = SocketAddress::ipv4Loopback(unusedPort());
  id.secret = randomSecret();
  Result<std::shared_ptr<TcpStoreClient>> c =
      TcpStoreClient::connect(id, 0, 2, Deadline::afterMs(300));
  ASSERT_FALSE(c.isOk());
  EXPECT_EQ(c.status().code(), Code::kTimeout);
  EXPECT_NE(c.status().message().find("no rendezvous root at " + id.root.toString()),
            std::string::npos);
  EXPECT_NE(c.status().message().find("is rank 0 running?"), std::string::npos);
}

TEST(TcpStoreClientTest, RejectsRankOutsideJob) {
  UniqueId id;
  id.root = SocketAddress::ipv4Loopback(1);
  EXPECT_EQ(TcpStoreClient::connect(id, 2, 2, Deadline::afterMs(100)).status().code(),
            Code::kInvalidArgument);
}

TEST(DetachedRootTest, CreateUniqueIdServesTheJobAndIsReapedAfterIt) {
  Result<UniqueId> id = createUniqueId("=lo");
  ASSERT_TRUE(id.isOk()) << id.status().toString();
  EXPECT_TRUE(id->root.isLoopback());
  EXPECT_NE(id->root.port(), 0);
  size_t before = detachedRootCount();
  EXPECT_GE(before, 1u);
  {
    auto a = connectOrDie(*id, 0, 2);
    auto b = connectOrDie(*id, 1, 2);
    ASSERT_TRUE(a->set("k", bytesOf("v")).isOk());
    EXPECT_TRUE(b->get("k", Deadline::afterMs(kConnectMs)).isOk());
  }
  Deadline d = Deadline::afterMs(kConnectMs);
  while (detachedRootCount() >= before && !d.expired())
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_LT(detachedRootCount(), before);
}

}  // namespace
}  // namespace loom::bootstrap
