// Behaviour of the shm transport, each test run with ranks as threads and as processes, with
// single copy (direct memcpy / CMA) on and off.
#include <gtest/gtest.h>

#include <cstring>
#include <tuple>
#include <vector>

#include "shm_test_util.h"

namespace loom::transport::shm::testing {
namespace {

#define EXPECT_OK(expr)                      \
  do {                                       \
    ::loom::Status s_ = (expr);              \
    EXPECT_TRUE(s_.isOk()) << s_.toString(); \
  } while (0)

#define CHECK_OR_RETURN(cond, msg)                                        \
  do {                                                                    \
    if (!(cond)) return internalError(std::string(msg) + " [" #cond "]"); \
  } while (0)

// Message sizes that cover zero bytes, odd sizes, one slot exactly, both single-copy
// thresholds (4 KiB direct, 64 KiB CMA) on both sides, and messages several times larger than
// the ring (512 KiB).
std::vector<size_t> mixedSizes() {
  return {0,       1,
          7,       8,
          31,      32,
          33,      4095,
          4096,    4097,
          65535,   65536,
          65537,   100000,
          524288,  524289,
          2100001, 0,
          3,       131072,
          1 << 20, 5 * 1000 * 1000 + 1};
}

class ShmPairTest : public ::testing::TestWithParam<std::tuple<Mode, bool>> {
 protected:
  PairOptions pair() const {
    PairOptions p;
    p.mode = std::get<0>(GetParam());
    p.shm.directCopy = p.shm.cma = std::get<1>(GetParam());
    return p;
  }
};

// Sender: post every message at once (many outstanding), then wait.
Status sendAll(RankEnv& env, Connection* c, const std::vector<size_t>& sizes, uint64_t seedBase,
               std::vector<std::vector<uint8_t>>* buffers) {
  for (size_t i = 0; i < sizes.size(); ++i) {
    buffers->emplace_back(sizes[i]);
    fillPattern(buffers->back().data(), sizes[i], seedBase + i);
  }
  for (size_t i = 0; i < sizes.size(); ++i)
    LOOM_RETURN_IF_ERROR(c->postSend((*buffers)[i].data(), sizes[i], seedBase + i));
  (void)env;
  return Status::ok();
}

Status recvAll(Connection* c, const std::vector<size_t>& sizes, uint64_t seedBase,
               std::vector<std::vector<uint8_t>>* buffers) {
  for (size_t i = 0; i < sizes.size(); ++i)
    buffers->emplace_back(sizes[i], 0xee);
  for (size_t i = 0; i < sizes.size(); ++i)
    LOOM_RETURN_IF_ERROR(c->postRecv((*buffers)[i].data(), sizes[i], seedBase + i));
  return Status::ok();
}

Status checkAll(const std::vector<size_t>& sizes, uint64_t seedBase,
                const std::vector<std::vector<uint8_t>>& buffers) {
  for (size_t i = 0; i < sizes.size(); ++i)
    CHECK_OR_RETURN(checkPattern(buffers[i].data(), sizes[i], seedBase + i),
                    "message " + std::to_string(i) + " of " + std::to_string(sizes[i]) +
                        " bytes arrived corrupted");
  return Status::ok();
}

TEST_P(ShmPairTest, MessagesOfEverySizeArriveInOrder) {
  auto sizes = mixedSizes();
  RankBody sender = [&](RankEnv& env) -> Status {
    LOOM_ASSIGN_OR_RETURN(Connection * c, env.connect(0));
    std::vector<std::vector<uint8_t>> bufs;
    LOOM_RETURN_IF_ERROR(sendAll(env, c, sizes, 100, &bufs));
    LOOM_RETURN_IF_ERROR(env.waitIdle(c));
    CHECK_OR_RETURN(c->sendsCompleted() == sizes.size(), "send count");
    bool single = env.options.cma;
    ShmConnection* s = env.shm(c);
    if (env.mode == Mode::kProcesses)
      CHECK_OR_RETURN(s->sendsWithCmaForTesting() == single, "CMA use");
    else
      CHECK_OR_RETURN(s->sendsDirectForTesting() == single, "direct-copy use");
    return c->close(Deadline::afterMs(kTestTimeoutMs));
  };
  RankBody receiver = [&](RankEnv& env) -> Status {
    LOOM_ASSIGN_OR_RETURN(Connection * c, env.connect(0));
    std::vector<std::vector<uint8_t>> bufs;
    LOOM_RETURN_IF_ERROR(recvAll(c, sizes, 100, &bufs));
    LOOM_RETURN_IF_ERROR(env.waitIdle(c));
    LOOM_RETURN_IF_ERROR(checkAll(sizes, 100, bufs));
    return c->close(Deadline::afterMs(kTestTimeoutMs));
  };
  EXPECT_OK(runPair(pair(), sender, receiver));
  EXPECT_OK(runPair(pair(), receiver, sender));  // the accepting side sends
}

TEST_P(ShmPairTest, BothDirectionsAtOnce) {
  auto sizes = mixedSizes();
  RankBody body = [&](RankEnv& env) -> Status {
    LOOM_ASSIGN_OR_RETURN(Connection * c, env.connect(0));
    std::vector<std::vector<uint8_t>> out, in;
    uint64_t mine = 1000 * (env.rank + 1), theirs = 1000 * (2 - env.rank);
    LOOM_RETURN_IF_ERROR(recvAll(c, sizes, theirs, &in));
    LOOM_RETURN_IF_ERROR(sendAll(env, c, sizes, mine, &out));
    LOOM_RETURN_IF_ERROR(env.waitIdle(c));
    LOOM_RETURN_IF_ERROR(checkAll(sizes, theirs, in));
    return c->close(Deadline::afterMs(kTestTimeoutMs));
  };
  EXPECT_OK(runPair(pair(), body, body));
}

TEST_P(ShmPairTest, ManyOutstandingSmallMessagesAndReceivesPostedLate) {
  std::vector<size_t> sizes(3000);
  for (size_t i = 0; i < sizes.size(); ++i)
    sizes[i] = i % 17;
  RankBody sender = [&](RankEnv& env) -> Status {
    LOOM_ASSIGN_OR_RETURN(Connection * c, env.connect(0));
    std::vector<std::vector<uint8_t>> bufs;
    LOOM_RETURN_IF_ERROR(sendAll(env, c, sizes, 7, &bufs));
    LOOM_RETURN_IF_ERROR(env.waitIdle(c));
    return c->close(Deadline::afterMs(kTestTimeoutMs));
  };
  RankBody receiver = [&](RankEnv& env) -> Status {
    LOOM_ASSIGN_OR_RETURN(Connection * c, env.connect(0));
    // Let the sender fill the ring before anything is posted here (flow control).
    env.waitFor([] { return false; }, 50).ignoreError();
    std::vector<std::vector<uint8_t>> bufs;
    LOOM_RETURN_IF_ERROR(recvAll(c, sizes, 7, &bufs));
    LOOM_RETURN_IF_ERROR(env.waitIdle(c));
    LOOM_RETURN_IF_ERROR(checkAll(sizes, 7, bufs));
    return c->close(Deadline::afterMs(kTestTimeoutMs));
  };
  EXPECT_OK(runPair(pair(), sender, receiver));
}

TEST_P(ShmPairTest, LanesAreIndependentConnections) {
  constexpr int kLanes = 4;
  RankBody body = [&](RankEnv& env) -> Status {
    std::vector<Connection*> lanes;
    for (int l = 0; l < kLanes; ++l) {
      LOOM_ASSIGN_OR_RETURN(Connection * c, env.connect(env.rank == 0 ? l : kLanes - 1 - l));
      lanes.push_back(c);
    }
    std::vector<std::vector<uint8_t>> out(kLanes), in(kLanes);
    for (auto* c : lanes) {
      int l = c->lane();
      size_t bytes = 70000 + 1000 * l;
      in[l].assign(bytes, 0);
      out[l].resize(bytes);
      fillPattern(out[l].data(), bytes, 50 * env.rank + l);
      LOOM_RETURN_IF_ERROR(c->postRecv(in[l].data(), bytes, l));
      LOOM_RETURN_IF_ERROR(c->postSend(out[l].data(), bytes, l));
    }
    for (auto* c : lanes)
      LOOM_RETURN_IF_ERROR(env.waitIdle(c));
    for (int l = 0; l < kLanes; ++l)
      CHECK_OR_RETURN(checkPattern(in[l].data(), in[l].size(), 50 * (1 - env.rank) + l),
                      "lane " + std::to_string(l) + " data");
    for (auto* c : lanes)
      LOOM_RETURN_IF_ERROR(c->close(Deadline::afterMs(kTestTimeoutMs)));
    return Status::ok();
  };
  EXPECT_OK(runPair(pair(), body, body));
}

Status expectMismatch(RankEnv& env, size_t sendBytes, uint64_t sendTag, size_t recvBytes,
                      uint64_t recvTag) {
  LOOM_ASSIGN_OR_RETURN(Connection * c, env.connect(0));
  std::vector<uint8_t> buf(std::max(sendBytes, recvBytes));
  if (env.rank == 0) {
    LOOM_RETURN_IF_ERROR(c->postSend(buf.data(), sendBytes, sendTag));
    // The receiver fails and closes; our side sees it (or completes first), never hangs.
    Status s = env.waitFor([c] { return c->sendsCompleted() == 1; });
    if (!s.isOk() && s.code() != Code::kRemoteError) return s;
    LOOM_RETURN_IF_ERROR(env.sync());
    return Status::ok();
  }
  LOOM_RETURN_IF_ERROR(c->postRecv(buf.data(), recvBytes, recvTag));
  Status s = env.waitFor([c] { return c->recvsCompleted() == 1; });
  LOOM_RETURN_IF_ERROR(env.sync());
  CHECK_OR_RETURN(s.code() == Code::kRemoteError, "expected RemoteError, got " + s.toString());
  CHECK_OR_RETURN(s.message().find("rank 0") != std::string::npos,
                  "peer not named: " + s.message());
  CHECK_OR_RETURN(s.message().find(std::to_string(sendBytes)) != std::string::npos,
                  "sent size not named: " + s.message());
  CHECK_OR_RETURN(c->progress().code() == Code::kRemoteError, "error is not sticky");
  CHECK_OR_RETURN(c->postRecv(buf.data(), 1, 0).code() == Code::kRemoteError, "post after error");
  return Status::ok();
}

TEST_P(ShmPairTest, SizeMismatchIsRemoteErrorNamingThePeer) {
  for (size_t bytes : {size_t{100}, size_t{300000}}) {
    RankBody body = [&](RankEnv& env) { return expectMismatch(env, bytes, 5, bytes + 1, 5); };
    EXPECT_OK(runPair(pair(), body, body));
  }
}

TEST_P(ShmPairTest, TagMismatchIsRemoteErrorNamingThePeer) {
  RankBody body = [&](RankEnv& env) { return expectMismatch(env, 64, 1, 64, 2); };
  EXPECT_OK(runPair(pair(), body, body));
}

TEST_P(ShmPairTest, SleepingDriverIsWokenForEveryMessage) {
  constexpr int kIterations = 1500;
  PairOptions p = pair();
  p.sleepWhenIdle = true;
  p.spinUs = 0;  // always sleep: every message must ring the doorbell
  RankBody body = [&](RankEnv& env) -> Status {
    LOOM_ASSIGN_OR_RETURN(Connection * c, env.connect(0));
    std::vector<uint8_t> buf(200000);
    for (int i = 0; i < kIterations; ++i) {
      size_t bytes = i % 50 == 0 ? buf.size() : 8;  // some single-copy (acked) messages too
      bool sendFirst = (i % 2 == 0) == (env.rank == 0);
      if (sendFirst) LOOM_RETURN_IF_ERROR(c->postSend(buf.data(), bytes, i));
      if (!sendFirst) LOOM_RETURN_IF_ERROR(c->postRecv(buf.data(), bytes, i));
      // 5 s per message: a lost wakeup fails the test instead of slowing it.
      LOOM_RETURN_IF_ERROR(env.waitIdle(c, 5000));
    }
    return c->close(Deadline::afterMs(kTestTimeoutMs));
  };
  EXPECT_OK(runPair(p, body, body));
}

TEST_P(ShmPairTest, DataSentBeforeThePeerClosedIsStillDelivered) {
  RankBody sender = [&](RankEnv& env) -> Status {
    LOOM_ASSIGN_OR_RETURN(Connection * c, env.connect(0));
    std::vector<uint8_t> small(1000);
    fillPattern(small.data(), small.size(), 9);
    LOOM_RETURN_IF_ERROR(c->postSend(small.data(), small.size(), 9));
    LOOM_RETURN_IF_ERROR(c->close(Deadline::afterMs(kTestTimeoutMs)));
    env.connections.clear();
    return env.sync();  // closed (socket gone) before the receiver even posts
  };
  RankBody receiver = [&](RankEnv& env) -> Status {
    LOOM_ASSIGN_OR_RETURN(Connection * c, env.connect(0));
    LOOM_RETURN_IF_ERROR(env.waitFor([&] { return env.shm(c)->readyForTesting(); }));
    LOOM_RETURN_IF_ERROR(env.sync());
    std::vector<uint8_t> got(1000);
    LOOM_RETURN_IF_ERROR(c->postRecv(got.data(), got.size(), 9));
    LOOM_RETURN_IF_ERROR(env.waitIdle(c));
    CHECK_OR_RETURN(checkPattern(got.data(), got.size(), 9), "data");
    // Anything more from the closed peer cannot arrive: RemoteError, not a hang.
    LOOM_RETURN_IF_ERROR(c->postRecv(got.data(), 1, 10));
    Status s = env.waitIdle(c, 5000);
    CHECK_OR_RETURN(s.code() == Code::kRemoteError, "expected RemoteError, got " + s.toString());
    CHECK_OR_RETURN(s.message().find("rank 0") != std::string::npos, s.message());
    return Status::ok();
  };
  EXPECT_OK(runPair(pair(), sender, receiver));
}

TEST_P(ShmPairTest, OperationsPostedBeforeTheHandshakeCompleteAndCloseIsIdempotent) {
  RankBody body = [&](RankEnv& env) -> Status {
    LOOM_ASSIGN_OR_RETURN(Connection * c, env.connect(0));
    std::vector<uint8_t> out(300000), in(300000);
    fillPattern(out.data(), out.size(), env.rank);
    LOOM_RETURN_IF_ERROR(c->postSend(out.data(), out.size(), 0));
    LOOM_RETURN_IF_ERROR(c->postRecv(in.data(), in.size(), 0));
    LOOM_RETURN_IF_ERROR(env.waitIdle(c));
    CHECK_OR_RETURN(checkPattern(in.data(), in.size(), 1 - env.rank), "data");
    LOOM_RETURN_IF_ERROR(c->close(Deadline::afterMs(kTestTimeoutMs)));
    LOOM_RETURN_IF_ERROR(c->close(Deadline::afterMs(kTestTimeoutMs)));
    CHECK_OR_RETURN(c->postSend(out.data(), 1, 0).code() == Code::kInvalidUsage,
                    "post after close");
    return Status::ok();
  };
  EXPECT_OK(runPair(pair(), body, body));
}

// Both ranks close while a large send of each waits for a receive the other never posts: each
// close ends at once with a RemoteError (or success), not at the deadline.
TEST_P(ShmPairTest, BothRanksClosingWithSendsInFlightEndPromptly) {
  RankBody body = [&](RankEnv& env) -> Status {
    LOOM_ASSIGN_OR_RETURN(Connection * c, env.connect(0));
    LOOM_RETURN_IF_ERROR(env.waitFor([&] { return env.shm(c)->readyForTesting(); }));
    std::vector<uint8_t> out(16 << 20);
    LOOM_RETURN_IF_ERROR(c->postSend(out.data(), out.size(), 1));
    LOOM_RETURN_IF_ERROR(env.sync());
    int64_t start = nowNs();
    Status s = c->close(Deadline::afterMs(kTestTimeoutMs));
    double ms = (nowNs() - start) / 1e6;
    CHECK_OR_RETURN(s.isOk() || s.code() == Code::kRemoteError, s.toString());
    CHECK_OR_RETURN(ms < 2000, "close took " + std::to_string(ms) + " ms");
    return Status::ok();
  };
  EXPECT_OK(runPair(pair(), body, body));
}

// A rank that connects and closes at once, before any progress, must not leave its peer
// waiting for the timeout: the peer's receive fails with "closed" (both rank orders, so both
// the accepter's "closed" reply and the connector's farewell are exercised).
TEST_P(ShmPairTest, ClosedBeforeConnectingFailsThePeersReceivePromptly) {
  for (int closer : {0, 1}) {
    RankBody closes = [&](RankEnv& env) -> Status {
      LOOM_ASSIGN_OR_RETURN(Connection * c, env.connect(0));
      LOOM_RETURN_IF_ERROR(c->close(Deadline::afterMs(kTestTimeoutMs)));
      LOOM_RETURN_IF_ERROR(env.sync());
      // Keep the transport alive and progressing until the peer has found out.
      return env.syncProgressing();
    };
    RankBody waits = [&](RankEnv& env) -> Status {
      LOOM_RETURN_IF_ERROR(env.sync());
      LOOM_ASSIGN_OR_RETURN(Connection * c, env.connect(0));
      uint32_t in = 0;
      LOOM_RETURN_IF_ERROR(c->postRecv(&in, 4, 1));
      int64_t start = nowNs();
      Status s = env.waitIdle(c, 10000);
      double ms = (nowNs() - start) / 1e6;
      LOOM_RETURN_IF_ERROR(env.sync());
      CHECK_OR_RETURN(s.code() == Code::kRemoteError, "expected RemoteError, got " + s.toString());
      CHECK_OR_RETURN(
          s.message().find("rank " + std::to_string(1 - env.rank)) != std::string::npos &&
              s.message().find("closed") != std::string::npos,
          s.message());
      CHECK_OR_RETURN(ms < 2000, "noticed after " + std::to_string(ms) + " ms");
      return Status::ok();
    };
    EXPECT_OK(closer == 0 ? runPair(pair(), closes, waits) : runPair(pair(), waits, closes));
  }
}

INSTANTIATE_TEST_SUITE_P(All, ShmPairTest,
                         ::testing::Combine(::testing::Values(Mode::kThreads, Mode::kProcesses),
                                            ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(modeName(std::get<0>(info.param))) +
                                  (std::get<1>(info.param) ? "SingleCopy" : "FifoOnly");
                         });

}  // namespace
}  // namespace loom::transport::shm::testing
