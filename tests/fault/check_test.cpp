// The collective-mismatch check (LOOM_CHECK / loomConfig_t.checkMode): ranks that disagree
// about what they run fail on every rank with a message naming the first divergent rank and
// both signatures; ranks that agree run exactly as without it.
#include <gtest/gtest.h>

#include "fault_util.h"
#include "sweep.h"

namespace loom::test {
namespace {

constexpr int kTimeoutMs = 20000;

TEST(CollectiveCheckTest, MatchingCollectivesRunExactlyWithTheCheckOn) {
  std::vector<loomComm_t> comms = initAll("loopback", 3, kTimeoutMs, /*checkMode=*/1);
  ASSERT_FALSE(comms.empty());
  SweepOptions opt;
  opt.counts = {0, 7, 1000};
  opt.types = {loomFloat32, loomInt64};
  auto out = onEveryRank(comms, [&](int r) {
    auto f = runSweep(comms[r], opt);
    for (const std::string& s : f)
      ADD_FAILURE() << s;
    return f.empty() ? loomSuccess : loomInternalError;
  });
  for (const RankOutcome& o : out)
    EXPECT_EQ(o.result, loomSuccess) << o.message;
  destroyAll(&comms);
}

TEST(CollectiveCheckTest, CountMismatchFailsEveryRankNamingTheDivergentRankAndBothSignatures) {
  std::vector<loomComm_t> comms = initAll("loopback", 3, kTimeoutMs, /*checkMode=*/1);
  ASSERT_FALSE(comms.empty());
  auto out = onEveryRank(comms, [&](int r) {
    std::vector<float> x(1000, 1.0f);
    EXPECT_EQ(loomAllReduce(x.data(), x.data(), 10, loomFloat32, loomSum, comms[r], nullptr),
              loomSuccess);
    const size_t count = r == 2 ? 999 : 1000;
    return loomAllReduce(x.data(), x.data(), count, loomFloat32, loomSum, comms[r], nullptr);
  });
  for (size_t r = 0; r < out.size(); ++r) {
    EXPECT_EQ(out[r].result, loomInvalidUsage) << "rank " << r << ": " << out[r].message;
    for (const char* w : {"collective mismatch", "rank 2 is the first to differ",
                          "allreduce #1 (1000 x float, sum", "allreduce #1 (999 x float, sum"})
      EXPECT_NE(out[r].message.find(w), std::string::npos) << w << " in: " << out[r].message;
  }
  std::printf("[measured] LOOM_CHECK count mismatch -> %s after %.3f s: %s\n",
              loomGetErrorString(out[0].result), out[0].seconds, out[0].message.c_str());
  destroyAll(&comms);
}

TEST(CollectiveCheckTest, DifferentCollectiveOrRootIsNamedToo) {
  std::vector<loomComm_t> comms = initAll("shm", 4, kTimeoutMs, /*checkMode=*/1);
  ASSERT_FALSE(comms.empty());
  auto out = onEveryRank(comms, [&](int r) {
    std::vector<float> x(100, 1.0f);
    if (r == 1) return loomBroadcast(x.data(), x.data(), 100, loomFloat32, 0, comms[r], nullptr);
    if (r == 3) return loomBroadcast(x.data(), x.data(), 100, loomFloat32, 2, comms[r], nullptr);
    return loomAllReduce(x.data(), x.data(), 100, loomFloat32, loomSum, comms[r], nullptr);
  });
  for (size_t r = 0; r < out.size(); ++r) {
    EXPECT_EQ(out[r].result, loomInvalidUsage) << "rank " << r << ": " << out[r].message;
    EXPECT_NE(out[r].message.find("rank 1 is the first to differ"), std::string::npos)
        << out[r].message;
    EXPECT_NE(out[r].message.find("broadcast #0 (100 x float, root 0)"), std::string::npos)
        << out[r].message;
  }
  // The communicator stays usable: nothing was sent.
  auto again = onEveryRank(comms, [&](int r) { return allReduceChecked(comms[r], 100); });
  for (const RankOutcome& o : again)
    EXPECT_EQ(o.result, loomSuccess) << o.message;
  destroyAll(&comms);
}

TEST(CollectiveCheckTest, GroupDrivenByOneThreadIsCheckedWithoutDeadlock) {
  std::vector<loomComm_t> comms = initAll("loopback", 3, kTimeoutMs, /*checkMode=*/1);
  ASSERT_FALSE(comms.empty());
  std::vector<std::vector<float>> x(3, std::vector<float>(10, 1.0f));
  ASSERT_EQ(loomGroupStart(), loomSuccess);
  for (int r = 0; r < 3; ++r)
    EXPECT_EQ(loomAllReduce(x[r].data(), x[r].data(), r == 0 ? 9 : 10, loomFloat32, loomSum,
                            comms[r], nullptr),
              loomSuccess);
  loomResult_t res = loomGroupEnd();
  EXPECT_EQ(res, loomInvalidUsage);
  EXPECT_NE(std::string(loomGetLastError(nullptr)).find("rank 1 is the first to differ"),
            std::string::npos)
      << loomGetLastError(nullptr);
  destroyAll(&comms);
}

}  // namespace
}  // namespace loom::test
