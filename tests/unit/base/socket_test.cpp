#include "base/socket.h"

#include <gtest/gtest.h>

#include <poll.h>

#include <thread>

namespace loom {
namespace {

TEST(SocketAddressTest, ParsesAndPrintsIpv4AndIpv6) {
  Result<SocketAddress> a = SocketAddress::parse("127.0.0.1:4711");
  ASSERT_TRUE(a.isOk()) << a.status().toString();
  EXPECT_EQ(a->toString(), "127.0.0.1:4711");
  EXPECT_TRUE(a->isLoopback());
  Result<SocketAddress> b = SocketAddress::parse("[::1]:80");
  ASSERT_TRUE(b.isOk());
  EXPECT_EQ(b->toString(), "[::1]:80");
  EXPECT_FALSE(SocketAddress::parse("nohostport").isOk());
  EXPECT_FALSE(SocketAddress::parse("1.2.3.4:99999").isOk());
}

TEST(SocketAddressTest, WireFormRoundTrips) {
  SocketAddress a = SocketAddress::ipv4Loopback(1234);
  uint8_t w[SocketAddress::kWireBytes];
  a.toWire(w);
  Result<SocketAddress> b = SocketAddress::fromWire(w);
  ASSERT_TRUE(b.isOk());
  EXPECT_EQ(b->toString(), "127.0.0.1:1234");
  w[1] = 99;  // unknown family
  EXPECT_FALSE(SocketAddress::fromWire(w).isOk());
}

TEST(SocketTest, ConnectSendReceiveAndPeerCloseIsRemoteError) {
  SocketAddress addr = SocketAddress::ipv4Loopback(0);
  Result<UniqueFd> listener = listenTcp(&addr);
  ASSERT_TRUE(listener.isOk()) << listener.status().toString();
  std::thread client([addr] {
    Result<UniqueFd> fd = connectTcp(addr, Deadline::afterMs(5000));
    ASSERT_TRUE(fd.isOk());
    ASSERT_TRUE(sendAll(fd->get(), "hello", 5, Deadline::afterMs(5000), "server").isOk());
  });
  Result<UniqueFd> conn = acceptTcp(listener->get(), Deadline::afterMs(5000), nullptr);
  ASSERT_TRUE(conn.isOk());
  char buf[5];
  ASSERT_TRUE(recvAll(conn->get(), buf, 5, Deadline::afterMs(5000), "client").isOk());
  EXPECT_EQ(std::string(buf, 5), "hello");
  client.join();
  Status s = recvAll(conn->get(), buf, 1, Deadline::afterMs(5000), "client 7");
  EXPECT_EQ(s.code(), Code::kRemoteError);
  EXPECT_NE(s.message().find("client 7"), std::string::npos);
}

TEST(SocketTest, ConnectToNobodyTimesOutAtTheDeadline) {
  SocketAddress addr = SocketAddress::ipv4Loopback(0);
  Result<UniqueFd> l = listenTcp(&addr);
  ASSERT_TRUE(l.isOk());
  l->reset();  // nobody listens on that port any more
  int64_t t0 = nowNs();
  Result<UniqueFd> fd = connectTcp(addr, Deadline::afterMs(300));
  EXPECT_EQ(fd.status().code(), Code::kTimeout);
  EXPECT_LT(nowNs() - t0, 3000000000);
}

TEST(SocketTest, ReceiveHonoursTheCancelFlag) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  std::atomic<bool> cancel{false};
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    cancel = true;
  });
  char c;
  Status s = recvAll(a.get(), &c, 1, Deadline::afterMs(10000), "peer", &cancel);
  t.join();
  EXPECT_EQ(s.code(), Code::kAborted);
}

TEST(SocketTest, UnixSocketsPassFileDescriptors) {
  std::string name = "loom-test-" + std::to_string(getpid());
  Result<UniqueFd> l = listenUnix(name);
  ASSERT_TRUE(l.isOk()) << l.status().toString();
  std::thread t([&] {
    Result<UniqueFd> c = connectUnix(name, Deadline::afterMs(5000));
    ASSERT_TRUE(c.isOk());
    int pipefd[2];
    ASSERT_EQ(pipe(pipefd), 0);
    ASSERT_TRUE(sendWithFds(c->get(), "x", 1, {pipefd[1]}, Deadline::afterMs(5000), "p").isOk());
    close(pipefd[1]);
    char r;
    ASSERT_EQ(read(pipefd[0], &r, 1), 1);
    EXPECT_EQ(r, 'y');
    close(pipefd[0]);
  });
  pollOne(l->get(), POLLIN, Deadline::afterMs(5000), "accept").ignoreError();
  UniqueFd s(accept(l->get(), nullptr, nullptr));
  ASSERT_TRUE(s.valid());
  char x;
  std::vector<UniqueFd> fds;
  ASSERT_TRUE(recvWithFds(s.get(), &x, 1, &fds, 2, Deadline::afterMs(5000), "q").isOk());
  ASSERT_EQ(fds.size(), 1u);
  ASSERT_EQ(write(fds[0].get(), "y", 1), 1);
  t.join();
}

}  // namespace
}  // namespace loom
