// Every built-in algorithm, proven by the verifier over nranks 1..17, counts {0, 1, 2, 7, 31,
// 1000} (100 at most for Bruck's AllToAll; so count < nranks and count % nranks != 0 both
// occur), roots {0, middle, last}, in place and out of place, one and two channels; plus
// properties the verifier does not see (no needless copies, bandwidth, scratch, argument checks).
#include <gtest/gtest.h>

#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "algorithms/algorithm.h"
#include "algorithms/verify.h"

namespace loom::algo {
namespace {

constexpr uint64_t kCounts[] = {0, 1, 2, 7, 31, 1000};
constexpr int kMaxRanks = 17;

bool isRooted(Collective c) {
  return c == Collective::kBroadcast || c == Collective::kReduce || c == Collective::kGather ||
         c == Collective::kScatter;
}

std::vector<int> rootsFor(Collective c, int n) {
  if (!isRooted(c)) return {0};
  const std::set<int> roots = {0, n / 2, n - 1};
  return {roots.begin(), roots.end()};
}

std::string argsText(const CollectiveArgs& a) {
  return std::string(collectiveName(a.collective)) + " nranks " + std::to_string(a.nranks) +
         " count " + std::to_string(a.count) + " root " + std::to_string(a.root) +
         (a.inPlace ? " in place" : "") + " nchannels " + std::to_string(a.nchannels);
}

testing::AssertionResult buildsAndVerifies(const Algorithm& algorithm, const CollectiveArgs& args) {
  Schedule schedule;
  Status status = buildAll(algorithm, args, &schedule);
  if (status.isOk()) status = verifySchedule(schedule);
  if (status.isOk()) return testing::AssertionSuccess();
  std::string listing;
  for (int r = 0; r < static_cast<int>(schedule.ranks.size()) && listing.size() < 4000; ++r) {
    listing += describe(schedule.ranks[r], r);
  }
  return testing::AssertionFailure() << argsText(args) << ": " << status.toString() << "\n"
                                     << listing;
}

struct AlgorithmId {
  Collective collective;
  const char* name;
  // Largest count swept. Bruck's AllToAll is for small blocks and its schedule touches about
  // (n/2) log2 n blocks per rank, so 1000-element blocks would only slow the sweep down.
  uint64_t maxCount = UINT64_MAX;
};

const AlgorithmId kCollectiveAlgorithms[] = {
    {Collective::kAllReduce, "ring"},
    {Collective::kAllGather, "ring"},
    {Collective::kReduceScatter, "ring"},
    {Collective::kBroadcast, "chain"},
    {Collective::kBroadcast, "binomial"},
    {Collective::kReduce, "binomial"},
    {Collective::kAllToAll, "pairwise"},
    {Collective::kGather, "linear"},
    {Collective::kScatter, "linear"},
    {Collective::kBarrier, "dissemination"},
    {Collective::kAllReduce, "recursive_doubling"},
    {Collective::kAllReduce, "rabenseifner"},
    {Collective::kAllReduce, "double_binary_tree"},
    {Collective::kBroadcast, "double_binary_tree"},
    {Collective::kBroadcast, "scatter_allgather"},
    {Collective::kAllGather, "bruck"},
    {Collective::kAllGather, "recursive_doubling"},
    {Collective::kReduceScatter, "recursive_halving"},
    {Collective::kAllToAll, "bruck", 100},
    {Collective::kAllReduce, "one_shot"},
    {Collective::kAllReduce, "two_shot"},
    {Collective::kAllGather, "one_shot"},
    {Collective::kReduceScatter, "one_shot"},
    {Collective::kBroadcast, "one_shot"},
    {Collective::kReduce, "one_shot"},
    {Collective::kAllToAll, "one_shot"},
};

class AlgorithmSweepTest : public testing::TestWithParam<std::tuple<AlgorithmId, int>> {};

TEST_P(AlgorithmSweepTest, VerifiesForEveryCountRootLayoutAndChannelCount) {
  const auto [id, n] = GetParam();
  const Algorithm* algorithm = findAlgorithm(id.collective, id.name);
  ASSERT_NE(algorithm, nullptr);
  for (uint64_t count : kCounts) {
    if (id.collective == Collective::kBarrier && count != 0) continue;
    if (count > id.maxCount) count = id.maxCount;
    for (int root : rootsFor(id.collective, n)) {
      for (bool inPlace : {false, true}) {
        for (int nchannels : {1, 2}) {
          CollectiveArgs args{id.collective, count, n, root, -1, inPlace, nchannels};
          ASSERT_TRUE(algorithm->supports(args)) << argsText(args);
          ASSERT_TRUE(buildsAndVerifies(*algorithm, args));
        }
      }
    }
  }
}

std::string sweepName(const testing::TestParamInfo<std::tuple<AlgorithmId, int>>& info) {
  const auto [id, n] = info.param;
  return std::string(collectiveName(id.collective)) + "_" + id.name + "_" + std::to_string(n) +
         "ranks";
}

INSTANTIATE_TEST_SUITE_P(AllBuiltins, AlgorithmSweepTest,
                         testing::Combine(testing::ValuesIn(kCollectiveAlgorithms),
                                          testing::Range(1, kMaxRanks + 1)),
                         sweepName);

// Send/Recv: build each side of a pairing and verify the exchange.
testing::AssertionResult exchangeVerifies(int n, const std::vector<std::pair<int, int>>& pairs,
                                          uint64_t count) {
  std::vector<std::optional<PeerCall>> calls(n);
  for (const auto& [from, to] : pairs) {
    for (const auto& [rank, collective, peer] :
         {std::tuple{from, Collective::kSend, to}, std::tuple{to, Collective::kRecv, from}}) {
      PeerCall call;
      call.args = {collective, count, n, 0, peer, false, 1};
      const Algorithm* direct = findAlgorithm(collective, "direct");
      if (direct == nullptr) return testing::AssertionFailure() << "no direct algorithm";
      Status status = direct->build(call.args, rank, &call.schedule);
      if (!status.isOk()) return testing::AssertionFailure() << status.toString();
      calls[rank] = std::move(call);
    }
  }
  Status status = verifyPointToPoint(calls);
  if (status.isOk()) return testing::AssertionSuccess();
  return testing::AssertionFailure()
         << "nranks " << n << " count " << count << ": " << status.toString();
}

TEST(SendRecvDirectTest, VerifiesSinglePairsBetweenAnyRanks) {
  for (int n = 2; n <= kMaxRanks; ++n) {
    for (uint64_t count : kCounts) {
      EXPECT_TRUE(exchangeVerifies(n, {{0, n - 1}}, count));
      EXPECT_TRUE(exchangeVerifies(n, {{n - 1, 0}}, count));
      EXPECT_TRUE(exchangeVerifies(n, {{n / 2, (n / 2 + 1) % n}}, count));
    }
  }
}

TEST(SendRecvDirectTest, VerifiesManyDisjointPairsAtOnce) {
  for (int n = 2; n <= kMaxRanks; ++n) {
    std::vector<std::pair<int, int>> pairs;
    for (int r = 0; r + 1 < n; r += 2) {
      pairs.push_back({r + 1, r});
    }
    for (uint64_t count : kCounts) {
      EXPECT_TRUE(exchangeVerifies(n, pairs, count));
    }
  }
}

TEST(SendRecvDirectTest, RejectsTheRankItselfAsPeer) {
  RankSchedule schedule;
  const CollectiveArgs args{Collective::kSend, 4, 3, 0, 1, false, 1};
  EXPECT_EQ(findAlgorithm(Collective::kSend, "direct")->build(args, 1, &schedule).code(),
            Code::kInvalidArgument);
}

}  // namespace
}  // namespace loom::algo
