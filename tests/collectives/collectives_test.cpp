// Collectives with ranks as threads in one process, over each transport that allows it.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "loom/loom.h"
#include "loom/loom.hpp"
#include "ranks.h"
#include "sweep.h"

namespace loom::test {
namespace {

// Small slices so that the sweep's larger counts span many slices (pipelining is exercised).
// loom snapshots the environment at its first use, which comes after static initialisation.
const int kSmallSlices = setenv("LOOM_SLICE_BYTES", "4096", 0);

struct Param {
  const char* transport;
  int nranks;
};

std::string paramName(const testing::TestParamInfo<Param>& info) {
  return std::string(info.param.transport) + "_" + std::to_string(info.param.nranks) + "ranks";
}

std::vector<loomComm_t> initAll(const Param& p, int timeoutMs = 30000, const char* algo = nullptr) {
  loomConfig_t cfg = LOOM_CONFIG_INITIALIZER;
  cfg.transport = p.transport;
  cfg.timeoutMs = timeoutMs;
  cfg.algo = algo;
  std::vector<loomComm_t> comms(p.nranks);
  loomResult_t r = loomCommInitAll(comms.data(), p.nranks, nullptr, &cfg);
  EXPECT_EQ(r, loomSuccess) << loomGetLastError(nullptr);
  if (r != loomSuccess) comms.clear();
  return comms;
}

void destroyAll(std::vector<loomComm_t>& comms) {
  for (loomComm_t c : comms)
    EXPECT_EQ(loomCommDestroy(c), loomSuccess);
}

class CollectivesTest : public testing::TestWithParam<Param> {};

TEST_P(CollectivesTest, EveryCollectiveTypeAndOpIsExact) {
  std::vector<loomComm_t> comms = initAll(GetParam());
  ASSERT_FALSE(comms.empty());
  onEveryRank(GetParam().nranks, [&](int r) { return runSweep(comms[r], SweepOptions{}); });
  destroyAll(comms);
}

TEST_P(CollectivesTest, GroupedSendRecvExchanges) {
  std::vector<loomComm_t> comms = initAll(GetParam());
  ASSERT_FALSE(comms.empty());
  onEveryRank(GetParam().nranks, [&](int r) { return runPointToPoint(comms[r]); });
  destroyAll(comms);
}

TEST_P(CollectivesTest, BarrierAndCountersAgree) {
  std::vector<loomComm_t> comms = initAll(GetParam(), 30000, "allreduce:ring");
  ASSERT_FALSE(comms.empty());
  const int n = GetParam().nranks;
  onEveryRank(n, [&](int r) {
    std::vector<std::string> f;
    std::vector<float> x(1000, 1.0f);
    for (int i = 0; i < 3; ++i)
      if (loomBarrier(comms[r], nullptr) != loomSuccess) f.push_back("barrier failed");
    if (loomAllReduce(x.data(), x.data(), x.size(), loomFloat32, loomSum, comms[r], nullptr) !=
        loomSuccess)
      f.push_back("allreduce failed");
    loomCounters_t c;
    loomCommGetCounters(comms[r], &c);
    if (c.calls[loomCollBarrier] != 3 || c.calls[loomCollAllReduce] != 1)
      f.push_back("counters: " + std::to_string(c.calls[loomCollBarrier]) + " barriers, " +
                  std::to_string(c.calls[loomCollAllReduce]) + " allreduces");
    // A ring allreduce sends 2(n-1)/n of the buffer.
    uint64_t want = n == 1 ? 0 : 2 * 4000ull * (n - 1) / n;
    if (n > 1 && (c.bytesSent[loomCollAllReduce] + n < want ||
                  c.bytesSent[loomCollAllReduce] > want + 2 * 4 * n))
      f.push_back("allreduce bytes sent " + std::to_string(c.bytesSent[loomCollAllReduce]) +
                  ", expected about " + std::to_string(want));
    return f;
  });
  destroyAll(comms);
}

INSTANTIATE_TEST_SUITE_P(Threads, CollectivesTest,
                         testing::Values(Param{"loopback", 1}, Param{"loopback", 2},
                                         Param{"loopback", 3}, Param{"loopback", 4},
                                         Param{"loopback", 5}, Param{"loopback", 8},
                                         Param{"shm", 2}, Param{"shm", 3}, Param{"shm", 4},
                                         Param{"shm", 5}, Param{"shm", 8}, Param{"socket", 2},
                                         Param{"socket", 3}, Param{"socket", 5}),
                         paramName);

TEST(GroupTest, OneThreadDrivesEveryRankThroughAGroup) {
  constexpr int n = 4;
  std::vector<loomComm_t> comms = initAll({"loopback", n});
  ASSERT_FALSE(comms.empty());
  std::vector<std::vector<int32_t>> bufs(n, std::vector<int32_t>(10000));
  for (int r = 0; r < n; ++r)
    for (size_t i = 0; i < bufs[r].size(); ++i)
      bufs[r][i] = static_cast<int32_t>(r + i);
  ASSERT_EQ(loomGroupStart(), loomSuccess);
  for (int r = 0; r < n; ++r)
    ASSERT_EQ(loomAllReduce(bufs[r].data(), bufs[r].data(), bufs[r].size(), loomInt32, loomSum,
                            comms[r], nullptr),
              loomSuccess);
  ASSERT_EQ(loomGroupEnd(), loomSuccess) << loomGetLastError(nullptr);
  for (int r = 0; r < n; ++r)
    for (size_t i = 0; i < bufs[r].size(); ++i)
      ASSERT_EQ(bufs[r][i], static_cast<int32_t>(6 + 4 * i));
  destroyAll(comms);
}

// nccl-tests' in-place sendrecv sends and receives one buffer in a group: the send carries the
// buffer as it was when the group started, whatever the receive writes over it.
TEST(GroupTest, SendOverwrittenByAReceiveOfTheGroupSendsTheOriginalContents) {
  for (const char* transport : {"loopback", "shm", "socket"}) {
    constexpr int n = 3;
    std::vector<loomComm_t> comms = initAll({transport, n});
    ASSERT_FALSE(comms.empty());
    onEveryRank(n, [&](int r) {
      std::vector<std::string> f;
      const size_t count = 300000;  // several slices
      const int to = (r + 1) % n, from = (r + n - 1) % n;
      std::vector<int32_t> buf(count + 10), self(count);
      for (size_t i = 0; i < buf.size(); ++i)
        buf[i] = static_cast<int32_t>(r * 1000003 + i);
      const std::vector<int32_t> before = buf;
      loomGroupStart();
      loomSend(buf.data(), count, loomInt32, to, comms[r], nullptr);
      loomRecv(buf.data() + 10, count, loomInt32, from, comms[r], nullptr);  // shifted overlap
      loomSend(buf.data() + 5, count, loomInt32, r, comms[r], nullptr);      // to self
      loomRecv(self.data(), count, loomInt32, r, comms[r], nullptr);
      if (loomGroupEnd() != loomSuccess) f.push_back(loomGetLastError(nullptr));
      for (size_t i = 0; i < count && f.size() < 3; ++i) {
        if (buf[10 + i] != static_cast<int32_t>(from * 1000003 + i))
          f.push_back(std::string(transport) + ": received element " + std::to_string(i) + " is " +
                      std::to_string(buf[10 + i]));
        if (self[i] != before[5 + i])
          f.push_back(std::string(transport) + ": self element " + std::to_string(i) + " is " +
                      std::to_string(self[i]));
      }
      return f;
    });
    destroyAll(comms);
  }
}

TEST(GroupTest, TwoReceivesIntoOverlappingMemoryAreInvalidArgument) {
  std::vector<loomComm_t> comms = initAll({"loopback", 2});
  ASSERT_FALSE(comms.empty());
  onEveryRank(2, [&](int r) {
    std::vector<std::string> f;
    std::vector<int32_t> buf(100000, r), other(100000, r);
    loomGroupStart();
    loomSend(other.data(), other.size(), loomInt32, 1 - r, comms[r], nullptr);
    loomSend(other.data(), other.size() - 10, loomInt32, 1 - r, comms[r], nullptr);
    loomRecv(buf.data(), buf.size(), loomInt32, 1 - r, comms[r], nullptr);
    loomRecv(buf.data() + 10, buf.size() - 10, loomInt32, 1 - r, comms[r], nullptr);
    if (loomGroupEnd() != loomInvalidArgument ||
        std::string(loomGetLastError(nullptr)).find("overlaps") == std::string::npos)
      f.push_back(std::string("expected an overlap error, got: ") + loomGetLastError(nullptr));
    return f;
  });
  destroyAll(comms);
}

TEST(GroupTest, GroupEndWithoutStartIsInvalidUsage) {
  EXPECT_EQ(loomGroupEnd(), loomInvalidUsage);
  EXPECT_NE(std::string(loomGetLastError(nullptr)).find("loomGroupStart"), std::string::npos);
}

TEST(AsyncTest, WorkCompletesOnTheProgressThreadInOrder) {
  constexpr int n = 3;
  std::vector<Communicator> comms;
  loomConfig_t cfg = LOOM_CONFIG_INITIALIZER;
  cfg.transport = "loopback";
  ASSERT_TRUE(Communicator::initAll(n, &comms, &cfg).ok());
  onEveryRank(n, [&](int r) {
    std::vector<std::string> f;
    std::vector<double> a(5000, r + 1.0), b(5000, 0.0);
    Work w1 = comms[r].allReduceAsync(a.data(), a.data(), a.size(), loomFloat64, loomSum);
    Work w2 = comms[r].allReduceAsync(a.data(), b.data(), a.size(), loomFloat64, loomMax);
    // A blocking call after async ones is queued behind them.
    std::vector<double> c(10, 1.0);
    Status s = comms[r].allReduce(c.data(), c.data(), c.size(), loomSum);
    if (!w1.wait().ok() || !w2.wait().ok() || !s.ok()) f.push_back("async work failed");
    if (a[0] != 6.0 || b[0] != 6.0 || c[0] != 3.0)
      f.push_back("wrong results " + std::to_string(a[0]) + " " + std::to_string(b[0]) + " " +
                  std::to_string(c[0]));
    return f;
  });
}

TEST(SplitTest, ColorsAndKeysFormOrderedSubCommunicators) {
  constexpr int n = 6;
  std::vector<loomComm_t> comms = initAll({"loopback", n});
  ASSERT_FALSE(comms.empty());
  std::vector<loomComm_t> subs(n, nullptr);
  onEveryRank(n, [&](int r) {
    std::vector<std::string> f;
    // Rank 5 opts out; others split by parity, ordered by descending rank (key = -rank).
    int color = r == 5 ? LOOM_SPLIT_NOCOLOR : r % 2;
    if (loomCommSplit(comms[r], color, -r, &subs[r], nullptr) != loomSuccess) {
      f.push_back(std::string("split failed: ") + loomGetLastError(nullptr));
      return f;
    }
    if (r == 5) {
      if (subs[r] != nullptr) f.push_back("NOCOLOR rank got a communicator");
      return f;
    }
    int size = 0, rank = -1;
    loomCommCount(subs[r], &size);
    loomCommUserRank(subs[r], &rank);
    const int wantSize = r % 2 == 0 ? 3 : 2;
    const int wantRank = r % 2 == 0 ? (4 - r) / 2 : (3 - r) / 2;
    if (size != wantSize || rank != wantRank)
      f.push_back("rank " + std::to_string(r) + " got " + std::to_string(rank) + "/" +
                  std::to_string(size));
    int64_t v = r, sum = 0;
    if (loomAllReduce(&v, &sum, 1, loomInt64, loomSum, subs[r], nullptr) != loomSuccess)
      f.push_back("allreduce on sub-communicator failed");
    if (sum != (r % 2 == 0 ? 0 + 2 + 4 : 1 + 3)) f.push_back("wrong sum " + std::to_string(sum));
    return f;
  });
  for (int r = 0; r < n; ++r)
    if (subs[r]) {
      EXPECT_EQ(loomCommDestroy(subs[r]), loomSuccess);
    }
  destroyAll(comms);
}

TEST(AbortTest, AbortFromAnotherThreadUnblocksAPendingCollective) {
  std::vector<loomComm_t> comms = initAll({"shm", 2}, 5000);
  ASSERT_FALSE(comms.empty());
  // Rank 1 never joins, so rank 0's allreduce waits until the abort.
  std::vector<float> x(1000, 1.0f);
  loomResult_t result = loomSuccess;
  auto t0 = std::chrono::steady_clock::now();
  std::thread waiter([&] {
    result = loomAllReduce(x.data(), x.data(), x.size(), loomFloat32, loomSum, comms[0], nullptr);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(loomCommAbort(comms[0]), loomSuccess);
  waiter.join();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(result, loomAborted);
  EXPECT_LT(seconds, 3.0);  // the timeout is 5 s: abort, not the deadline, ended the wait
  // The aborted handle is gone; the peer sees the abort as a failure (at worst at its
  // deadline), not a hang.
  EXPECT_EQ(loomCommCount(comms[0], nullptr), loomInvalidArgument);
  float y = 0;
  loomResult_t peer = loomAllReduce(&y, &y, 1, loomFloat32, loomSum, comms[1], nullptr);
  EXPECT_NE(peer, loomSuccess);
  EXPECT_EQ(loomCommAbort(comms[1]), loomSuccess);
}

}  // namespace
}  // namespace loom::test
