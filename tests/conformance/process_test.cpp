// Conformance for transports that connect processes (every backend that is not
// sameProcessOnly): ranks in a parent and a fork()ed child exchange data, and a child killed
// with SIGKILL mid-transfer turns into a RemoteError in the parent within the deadline.
//
// The child never runs gtest assertions; it reports through its exit status and is always
// killed and reaped by the parent (ChildProcess), whatever the test's outcome.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

namespace loom::transport::testing {
namespace {

// Owns a forked child: kills (SIGKILL) and reaps it unless the test already did.
class ChildProcess {
 public:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  ~ChildProcess() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  // Waits (bounded) for the child to exit by itself; its exit status, or -1.
  int wait(Deadline deadline) {
    int status = 0;
    while (!deadline.expired()) {
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      ::usleep(1000);
    }
    return -1;
  }
  void killNow() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_;
};

class ProcessTest : public TransportTest {
 protected:
  void SetUp() override {
    hash_ = freshCommHash();
    parent_ = makeRank(name(), 0, 2, hash_);
    ASSERT_NE(parent_, nullptr);
    if (parent_->transport->capabilities().sameProcessOnly)
      GTEST_SKIP() << name() << " connects only ranks of one process";
    ASSERT_EQ(::pipe(pipe_), 0);
  }
  void TearDown() override {
    for (int fd : pipe_)
      if (fd >= 0) ::close(fd);
  }

  // Forks rank 1. In the child: create the transport, send its address up the pipe, connect
  // to the parent and run body(connection); the child exits with body's result.
  pid_t forkChild(const std::function<int(Connection*, RankState&)>& body) {
    std::string parentAddress = parent_->transport->localAddress();
    pid_t pid = ::fork();
    if (pid != 0) return pid;
    ::close(pipe_[0]);
    Result<std::unique_ptr<RankState>> me = createRank(name(), 1, 2, hash_);
    if (!me.isOk()) ::_exit(10);
    std::string addr = (*me)->transport->localAddress();
    uint32_t len = static_cast<uint32_t>(addr.size());
    if (::write(pipe_[1], &len, 4) != 4 || ::write(pipe_[1], addr.data(), len) != len) ::_exit(11);
    Result<std::unique_ptr<Connection>> c = (*me)->transport->connect(0, 0, parentAddress);
    if (!c.isOk()) ::_exit(12);
    ::_exit(body(c->get(), **me));
  }

  // The parent's half: reads the child's address (bounded) and connects to it.
  std::unique_ptr<Connection> connectToChild() {
    ::close(pipe_[1]);
    pipe_[1] = -1;
    uint32_t len = 0;
    std::string addr;
    if (!readPipe(&len, 4) || len > Transport::kMaxAddressBytes) return nullptr;
    addr.resize(len);
    if (!readPipe(addr.data(), len)) return nullptr;
    Result<std::unique_ptr<Connection>> c = parent_->transport->connect(1, 0, addr);
    EXPECT_TRUE(c.isOk()) << c.status().toString();
    return c.isOk() ? std::move(c).value() : nullptr;
  }

  bool readPipe(void* out, size_t bytes) {
    size_t done = 0;
    Deadline deadline = Deadline::afterMs(kWaitMs);
    while (done < bytes) {
      pollfd p{pipe_[0], POLLIN, 0};
      if (::poll(&p, 1, deadline.remainingMs()) <= 0) return false;
      ssize_t n = ::read(pipe_[0], static_cast<char*>(out) + done, bytes - done);
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }

  uint64_t hash_ = 0;
  std::unique_ptr<RankState> parent_;
  int pipe_[2] = {-1, -1};
};

// Child: echoes kCount messages back to the parent, then closes cleanly.
constexpr int kEchoCount = 200;
size_t echoSize(int i) {
  return static_cast<size_t>((i * 7919) % 70000);
}

int echoChild(Connection* c, RankState& me) {
  std::vector<uint8_t> buf(70000);
  Driven d{{c}, {me.transport.get()}};
  for (int i = 0; i < kEchoCount; ++i) {
    if (!c->postRecv(buf.data(), echoSize(i), i).isOk()) return 20;
    if (!sleepUntil(
             d, *me.doorbell, [&] { return completeAll(*c); }, Deadline::afterMs(kWaitMs))
             .isOk())
      return 21;
    if (!c->postSend(buf.data(), echoSize(i), i).isOk()) return 22;
    if (!sleepUntil(
             d, *me.doorbell, [&] { return completeAll(*c); }, Deadline::afterMs(kWaitMs))
             .isOk())
      return 23;
  }
  return c->close(Deadline::afterMs(kWaitMs)).isOk() ? 0 : 24;
}

TEST_P(ProcessTest, ParentAndChildExchangeMessages) {
  ChildProcess child(forkChild(echoChild));
  std::unique_ptr<Connection> c = connectToChild();
  ASSERT_NE(c, nullptr);
  std::vector<uint8_t> out(70000), in(70000);
  Driven d{{c.get()}, {parent_->transport.get()}};
  for (int i = 0; i < kEchoCount; ++i) {
    fillPattern(out.data(), echoSize(i), i);
    ASSERT_TRUE(c->postSend(out.data(), echoSize(i), i).isOk());
    ASSERT_TRUE(c->postRecv(in.data(), echoSize(i), i).isOk());
    Status s = sleepUntil(
        d, *parent_->doorbell, [&] { return completeAll(*c); }, Deadline::afterMs(kWaitMs));
    ASSERT_TRUE(s.isOk()) << s.toString() << " at message " << i;
    ASSERT_EQ(firstMismatch(in.data(), echoSize(i), i), -1) << "message " << i;
  }
  EXPECT_EQ(child.wait(Deadline::afterMs(kWaitMs)), 0);
  EXPECT_TRUE(c->close(Deadline::afterMs(kWaitMs)).isOk());
}

// Child: streams 1 MiB messages until it is killed (bounded, in case the parent is gone).
int streamingChild(Connection* c, RankState& me) {
  std::vector<uint8_t> buf(1u << 20, 0x5a);
  Driven d{{c}, {me.transport.get()}};
  Deadline stop = Deadline::afterMs(4 * kWaitMs);
  for (uint64_t i = 0; !stop.expired(); ++i) {
    if (!c->postSend(buf.data(), buf.size(), i).isOk()) return 30;
    if (!sleepUntil(
             d, *me.doorbell, [&] { return completeAll(*c); }, stop)
             .isOk())
      return 31;
  }
  return 32;
}

TEST_P(ProcessTest, ChildKilledMidTransferIsRemoteErrorInTheParent) {
  ChildProcess child(forkChild(streamingChild));
  std::unique_ptr<Connection> c = connectToChild();
  ASSERT_NE(c, nullptr);
  std::vector<uint8_t> in(1u << 20);
  Driven d{{c.get()}, {parent_->transport.get()}};
  for (uint64_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(c->postRecv(in.data(), in.size(), i).isOk());
    Status s = sleepUntil(
        d, *parent_->doorbell, [&] { return completeAll(*c); }, Deadline::afterMs(kWaitMs));
    ASSERT_TRUE(s.isOk()) << s.toString();
  }
  child.killNow();
  for (uint64_t i = 3; i < 1000; ++i)
    ASSERT_TRUE(c->postRecv(in.data(), in.size(), i).isOk());
  int64_t start = nowNs();
  Status s = sleepUntil(
      d, *parent_->doorbell, [] { return false; }, Deadline::afterMs(kWaitMs));
  expectRemoteError(s, {"rank 1"});
  EXPECT_LT(nowNs() - start, int64_t{5} * 1000 * 1000 * 1000) << "took too long to notice";
}

LOOM_INSTANTIATE_FOR_ALL_TRANSPORTS(ProcessTest);

}  // namespace
}  // namespace loom::transport::testing
