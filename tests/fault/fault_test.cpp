// Collectives through the fault-injecting transport (transports/testing), ranks as threads.
//
// Each fault must end in an error that names what happened - never a hang, never a wrong
// result - within the communicator's deadline (kTimeoutMs) plus a bound for scheduling slack.
// Benign faults (delays, reordering across lanes) must leave every result exact.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "fault_util.h"
#include "sweep.h"

namespace loom::test {
namespace {

// Two channels (lanes 0 and 1), so that delaying one lane reorders traffic across lanes; small
// slices, so that collectives span many messages. Set before loom first reads the environment.
const int kTwoChannels = setenv("LOOM_NCHANNELS", "2", 0) + setenv("LOOM_SLICE_BYTES", "4096", 0);

constexpr int kTimeoutMs = 2000;
// An error must arrive within the deadline plus this much (threads on a loaded 2-core host).
constexpr double kSlackSec = 8.0;

bool mentions(const std::string& text, const std::vector<std::string>& words) {
  for (const std::string& w : words)
    if (text.find(w) == std::string::npos) {
      ADD_FAILURE() << "expected '" << w << "' in: " << text;
      return false;
    }
  return true;
}

class FaultTransportTest : public testing::TestWithParam<const char*> {};

TEST_P(FaultTransportTest, WrapperWithoutFaultsKeepsTheSweepExact) {
  FaultScope faults("");
  std::vector<loomComm_t> comms = initAll(GetParam(), 3, 30000);
  ASSERT_FALSE(comms.empty());
  SweepOptions opt;
  opt.counts = {0, 1, 7, 5000};
  auto out = onEveryRank(comms, [&](int r) {
    auto f = runSweep(comms[r], opt);
    auto p = runPointToPoint(comms[r]);
    for (const std::string& s : f)
      ADD_FAILURE() << s;
    for (const std::string& s : p)
      ADD_FAILURE() << s;
    return f.empty() && p.empty() ? loomSuccess : loomInternalError;
  });
  for (const RankOutcome& o : out)
    EXPECT_EQ(o.result, loomSuccess) << o.message;
  destroyAll(&comms);
}

TEST_P(FaultTransportTest, DelayedMessagesLeaveResultsExact) {
  FaultScope faults("delay:rank=1,ms=3");
  std::vector<loomComm_t> comms = initAll(GetParam(), 3, 30000);
  ASSERT_FALSE(comms.empty());
  auto out = onEveryRank(comms, [&](int r) {
    for (size_t count : {1, 1000, 20000}) {
      loomResult_t res = allReduceChecked(comms[r], count);
      if (res != loomSuccess) return res;
    }
    return loomSuccess;
  });
  for (const RankOutcome& o : out)
    EXPECT_EQ(o.result, loomSuccess) << o.message;
  EXPECT_GT(faults.counters().count(transport::fault::FaultKind::kDelay), 0);
  destroyAll(&comms);
}

// The transport contract orders messages per connection only; holding back lane 0 lets lane 1
// (the second channel) overtake it. Results must not depend on cross-lane order.
TEST_P(FaultTransportTest, DelayingOneLaneReordersAcrossLanesAndResultsStayExact) {
  FaultScope faults("delay:lane=0,ms=20");
  std::vector<loomComm_t> comms = initAll(GetParam(), 4, 30000);
  ASSERT_FALSE(comms.empty());
  auto out = onEveryRank(comms, [&](int r) {
    for (size_t count : {64, 50000}) {
      loomResult_t res = allReduceChecked(comms[r], count);
      if (res != loomSuccess) return res;
    }
    return loomSuccess;
  });
  for (const RankOutcome& o : out)
    EXPECT_EQ(o.result, loomSuccess) << o.message;
  destroyAll(&comms);
}

// A message that never arrives: the receiver times out and says where it waited, for whom, and
// when it last heard from that peer; the error is then sticky.
TEST_P(FaultTransportTest, DroppedMessageTimesOutNamingOperationStepPeerAndLastProgress) {
  FaultScope faults("drop:rank=0,peer=1,lane=64,msg=1");
  std::vector<loomComm_t> comms = initAll(GetParam(), 2, kTimeoutMs);
  ASSERT_FALSE(comms.empty());
  auto out = onEveryRank(comms, [&](int r) {
    int v = 7;
    for (int i = 0; i < 2; ++i) {
      loomResult_t res = r == 0 ? loomSend(&v, 1, loomInt32, 1, comms[r], nullptr)
                                : loomRecv(&v, 1, loomInt32, 0, comms[r], nullptr);
      if (res != loomSuccess) return res;
    }
    return loomSuccess;
  });
  EXPECT_EQ(out[0].result, loomSuccess) << out[0].message;  // a dropped send completes
  EXPECT_EQ(out[1].result, loomTimeout) << out[1].message;
  EXPECT_GE(out[1].seconds, kTimeoutMs / 1000.0 * 0.9);
  EXPECT_LT(out[1].seconds, kTimeoutMs / 1000.0 + kSlackSec);
  mentions(out[1].message,
           {"recv #1", "rank 1 of 2", "communicator fault-test", "step ", "from rank 0 (host",
            "last message from rank 0", "ms ago", "LOOM_TIMEOUT_MS"});
  std::printf("[measured] drop -> %s after %.3f s: %s\n", loomGetErrorString(out[1].result),
              out[1].seconds, out[1].message.c_str());
  int v = 0;
  EXPECT_EQ(loomRecv(&v, 1, loomInt32, 0, comms[1], nullptr), loomTimeout);  // sticky
  loomResult_t async = loomSuccess;
  EXPECT_EQ(loomCommGetAsyncError(comms[1], &async), loomSuccess);
  EXPECT_EQ(async, loomTimeout);
  EXPECT_EQ(faults.counters().count(transport::fault::FaultKind::kDrop), 1);
  destroyAll(&comms);
}

// In a ring, one lost message stalls everyone behind it: every rank must still return.
TEST_P(FaultTransportTest, DroppedCollectiveMessageFailsEveryRankWithinTheDeadline) {
  FaultScope faults("drop:rank=0,peer=1,lane=0,msg=0");
  std::vector<loomComm_t> comms = initAll(GetParam(), 4, kTimeoutMs);
  ASSERT_FALSE(comms.empty());
  RankBuffers bufs(comms.size());
  auto out =
      onEveryRank(comms, [&](int r) { return allReduceChecked(comms[r], 100000, &bufs[r]); });
  for (size_t r = 0; r < out.size(); ++r) {
    EXPECT_NE(out[r].result, loomSuccess) << "rank " << r;
    EXPECT_LT(out[r].seconds, kTimeoutMs / 1000.0 + kSlackSec) << "rank " << r;
  }
  mentions(out[1].message, {"allreduce #0", "rank 1 of 4", "rank 0"});
  destroyAll(&comms);
}

TEST_P(FaultTransportTest, ShortWriteIsRemoteErrorNamingPeerAndBothSizes) {
  FaultScope faults("short:rank=0,peer=1,lane=64,msg=0,bytes=4");
  std::vector<loomComm_t> comms = initAll(GetParam(), 2, kTimeoutMs);
  ASSERT_FALSE(comms.empty());
  std::vector<std::vector<int>> bufs(2, std::vector<int>(64));
  auto out = onEveryRank(comms, [&](int r) {
    std::vector<int>& v = bufs[r];
    return r == 0 ? loomSend(v.data(), 64, loomInt32, 1, comms[r], nullptr)
                  : loomRecv(v.data(), 64, loomInt32, 0, comms[r], nullptr);
  });
  EXPECT_EQ(out[1].result, loomRemoteError) << out[1].message;
  mentions(out[1].message, {"rank 0", "252", "256", "recv #0"});
  EXPECT_LT(out[1].seconds, kTimeoutMs / 1000.0 + kSlackSec);
  std::printf("[measured] short write -> %s after %.3f s: %s\n", loomGetErrorString(out[1].result),
              out[1].seconds, out[1].message.c_str());
  destroyAll(&comms);
}

TEST_P(FaultTransportTest, CorruptHeaderIsRemoteErrorNamingPeerAndTags) {
  FaultScope faults("corrupt:rank=1,peer=0,lane=0,msg=0");
  // Ring: rank 1's second step needs the chunk rank 0 reduces from the corrupted message, so
  // rank 1 must fail too. (With recursive doubling rank 1 has all it needs after one exchange
  // and may rightly finish before rank 0 notices.)
  std::vector<loomComm_t> comms =
      initAll(GetParam(), 2, kTimeoutMs, LOOM_CONFIG_UNDEF_INT, "allreduce:ring");
  ASSERT_FALSE(comms.empty());
  RankBuffers bufs(comms.size());
  auto out = onEveryRank(comms, [&](int r) { return allReduceChecked(comms[r], 1000, &bufs[r]); });
  EXPECT_EQ(out[0].result, loomRemoteError) << out[0].message;
  mentions(out[0].message, {"rank 1", "tag", "allreduce #0"});
  EXPECT_NE(out[1].result, loomSuccess);
  for (const RankOutcome& o : out)
    EXPECT_LT(o.seconds, kTimeoutMs / 1000.0 + kSlackSec);
  std::printf("[measured] corrupt header -> %s after %.3f s: %s\n",
              loomGetErrorString(out[0].result), out[0].seconds, out[0].message.c_str());
  destroyAll(&comms);
}

TEST_P(FaultTransportTest, ClosedConnectionIsRemoteErrorOnBothSides) {
  // Message 10: after the first full pipeline (8 slices) completed, so the connection is
  // established. (A connection closed during its handshake looks, to the peer, like a stranger
  // that gave up: the peer then waits for the real rank 0 until its deadline.)
  FaultScope faults("close:rank=0,peer=1,lane=0,msg=10");
  std::vector<loomComm_t> comms = initAll(GetParam(), 2, kTimeoutMs);
  ASSERT_FALSE(comms.empty());
  // Each rank frees its buffers as soon as its call returns: a failed operation must not leave
  // anything a peer thread could still copy from (its connections are revoked on failure).
  auto out = onEveryRank(comms, [&](int r) { return allReduceChecked(comms[r], 100000); });
  EXPECT_EQ(out[0].result, loomRemoteError) << out[0].message;
  mentions(out[0].message, {"closed by fault injection"});
  EXPECT_EQ(out[1].result, loomRemoteError) << out[1].message;
  mentions(out[1].message, {"rank 0", "allreduce #0", "rank 1 of 2"});
  EXPECT_LT(out[1].seconds, kTimeoutMs / 1000.0 + kSlackSec);
  std::printf("[measured] close -> %s after %.3f s: %s\n", loomGetErrorString(out[1].result),
              out[1].seconds, out[1].message.c_str());
  destroyAll(&comms);
}

// Peer death with ranks as threads: rank 2 "crashes" (every connection it has closes at once).
// A rank that receives from it (rank 3 in a ring) gets a RemoteError naming it at once;
// ranks that wait on others fail by their deadline; nobody hangs; every error is sticky.
TEST_P(FaultTransportTest, CrashedRankIsRemoteErrorNamingItAndTheErrorIsSticky) {
  FaultScope faults("crash:rank=2,msg=3");
  std::vector<loomComm_t> comms = initAll(GetParam(), 4, kTimeoutMs);
  ASSERT_FALSE(comms.empty());
  RankBuffers bufs(comms.size());
  auto out = onEveryRank(comms, [&](int r) {
    for (int i = 0; i < 20; ++i) {
      loomResult_t res = allReduceChecked(comms[r], 5000, &bufs[r]);
      if (res != loomSuccess) return res;
    }
    return loomSuccess;
  });
  // Whichever algorithm the planner picks, some rank exchanges data with rank 2 directly.
  int naming = 0;
  for (int r : {0, 1, 3})
    naming +=
        out[r].result == loomRemoteError && out[r].message.find("rank 2") != std::string::npos;
  EXPECT_GE(naming, 1) << "no survivor got a RemoteError naming rank 2";
  for (size_t r = 0; r < out.size(); ++r) {
    EXPECT_NE(out[r].result, loomSuccess) << "rank " << r;
    EXPECT_LT(out[r].seconds, kTimeoutMs / 1000.0 + kSlackSec) << "rank " << r;
    loomResult_t async = loomSuccess;
    EXPECT_EQ(loomCommGetAsyncError(comms[r], &async), loomSuccess);
    EXPECT_EQ(async, out[r].result) << "rank " << r;
    float x = 1;
    EXPECT_EQ(loomAllReduce(&x, &x, 1, loomFloat32, loomSum, comms[r], nullptr), out[r].result)
        << "rank " << r << ": the error must be sticky";
  }
  for (int r : {0, 1, 3})
    std::printf("[measured] crash of rank 2 -> rank %d: %s after %.3f s: %s\n", r,
                loomGetErrorString(out[r].result), out[r].seconds, out[r].message.c_str());
  destroyAll(&comms);
}

INSTANTIATE_TEST_SUITE_P(Transports, FaultTransportTest,
                         testing::Values("loopback", "shm", "socket"),
                         [](const testing::TestParamInfo<const char*>& i) {
                           return std::string(i.param);
                         });

TEST(FaultPlanTest, ParsesAndPrintsRules) {
  auto p = transport::fault::FaultPlan::parse("drop:rank=1,peer=0,lane=0,msg=3;delay:ms=50");
  ASSERT_TRUE(p.isOk()) << p.status().toString();
  EXPECT_EQ(p->toString(), "drop:rank=1,peer=0,lane=0,msg=3;delay:ms=50");
  EXPECT_NE(p->find(1, 0, 0, 3), nullptr);
  EXPECT_EQ(p->find(1, 0, 0, 3)->kind, transport::fault::FaultKind::kDrop);
  EXPECT_EQ(p->find(1, 0, 0, 4)->kind, transport::fault::FaultKind::kDelay);
}

TEST(FaultPlanTest, BadRulesAreInvalidArgumentNamingThem) {
  EXPECT_EQ(transport::fault::FaultPlan::parse("explode:rank=1").status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(transport::fault::FaultPlan::parse("drop:rank=x").status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(transport::fault::FaultPlan::parse("drop:color=1").status().code(),
            Code::kInvalidArgument);
}

}  // namespace
}  // namespace loom::test
