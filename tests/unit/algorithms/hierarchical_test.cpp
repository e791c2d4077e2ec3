// The hierarchical algorithms (<collective>_hierarchical.cpp): proven by the verifier over
// nranks 1..17 on many host layouts (one host, one rank per host, even and uneven hosts, ranks
// of a host not adjacent), counts below and above nranks, every root, in place and out of place,
// one and two channels; their traffic across hosts; and the planner choosing them on several
// hosts with several ranks each, and only there.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "algorithms/algorithm.h"
#include "algorithms/cost_model.h"
#include "algorithms/planner.h"
#include "algorithms/verify.h"

namespace loom::algo {
namespace {

constexpr int kMaxRanks = 17;
constexpr uint64_t kCounts[] = {0, 1, 2, 7, 31, 200};
constexpr Collective kHierarchical[] = {Collective::kAllReduce, Collective::kAllGather,
                                        Collective::kReduceScatter, Collective::kBroadcast,
                                        Collective::kReduce};

HostLayout fromHostOf(const std::vector<int>& hostOf) {
  return HostLayout::fromHostOf(hostOf);
}

// Layouts of n ranks, each with a name for failure messages.
std::vector<std::pair<std::string, HostLayout>> layoutsOf(int n) {
  std::vector<std::pair<std::string, HostLayout>> out;
  out.push_back({"unknown (one host)", HostLayout{}});
  std::vector<int> one(n, 7), each(n), pairs(n), triples(n), alternate(n), lopsided(n), mixed(n);
  for (int r = 0; r < n; ++r) {
    each[r] = r;
    pairs[r] = r / 2;
    triples[r] = r / 3;
    alternate[r] = r % 2;            // a host's ranks are not adjacent
    lopsided[r] = r == 0 ? 0 : 1;    // 1 rank and n-1
    mixed[r] = (r * 7 + r / 4) % 3;  // uneven and scattered
  }
  out.push_back({"one host", fromHostOf(one)});
  out.push_back({"one rank per host", fromHostOf(each)});
  out.push_back({"hosts of 2", fromHostOf(pairs)});
  out.push_back({"hosts of 3", fromHostOf(triples)});
  out.push_back({"alternating 2 hosts", fromHostOf(alternate)});
  out.push_back({"1 + (n-1)", fromHostOf(lopsided)});
  out.push_back({"mixed 3 hosts", fromHostOf(mixed)});
  return out;
}

std::vector<int> rootsFor(Collective c, int n) {
  if (c != Collective::kBroadcast && c != Collective::kReduce) return {0};
  const std::set<int> roots = {0, 1 % n, n / 2, n - 1};
  return {roots.begin(), roots.end()};
}

testing::AssertionResult buildsAndVerifies(const Algorithm& algorithm, const CollectiveArgs& args,
                                           const std::string& layoutName) {
  Schedule schedule;
  Status status = buildAll(algorithm, args, &schedule);
  if (status.isOk()) status = verifySchedule(schedule);
  if (status.isOk()) return testing::AssertionSuccess();
  std::string listing;
  for (int r = 0; r < static_cast<int>(schedule.ranks.size()) && listing.size() < 4000; ++r)
    listing += describe(schedule.ranks[r], r);
  return testing::AssertionFailure()
         << collectiveName(args.collective) << " nranks " << args.nranks << " count " << args.count
         << " root " << args.root << (args.inPlace ? " in place" : "") << " nchannels "
         << args.nchannels << " layout " << layoutName << " [" << args.hosts.toString()
         << "]: " << status.toString() << "\n"
         << listing;
}

class HierarchicalSweepTest : public testing::TestWithParam<std::tuple<Collective, int>> {};

TEST_P(HierarchicalSweepTest, VerifiesOnEveryLayoutCountRootAndChannelCount) {
  const auto [collective, n] = GetParam();
  const Algorithm* algorithm = findAlgorithm(collective, "hierarchical");
  ASSERT_NE(algorithm, nullptr);
  for (const auto& [layoutName, layout] : layoutsOf(n)) {
    for (uint64_t count : kCounts) {
      for (int root : rootsFor(collective, n)) {
        for (bool inPlace : {false, true}) {
          for (int nchannels : {1, 2}) {
            CollectiveArgs args{collective, count, n, root, -1, inPlace, nchannels, layout};
            ASSERT_TRUE(algorithm->supports(args)) << layoutName;
            ASSERT_TRUE(buildsAndVerifies(*algorithm, args, layoutName));
          }
        }
      }
    }
  }
}

std::string sweepName(const testing::TestParamInfo<std::tuple<Collective, int>>& info) {
  const auto [collective, n] = info.param;
  return std::string(collectiveName(collective)) + "_" + std::to_string(n) + "ranks";
}

INSTANTIATE_TEST_SUITE_P(Hierarchical, HierarchicalSweepTest,
                         testing::Combine(testing::ValuesIn(kHierarchical),
                                          testing::Range(1, kMaxRanks + 1)),
                         sweepName);

TEST(HostLayoutTest, NumbersHostsByTheirLowestRankWhateverTheLabels) {
  const HostLayout a = HostLayout::fromHostOf(std::vector<int>{9, 9, 4, 4, 9});
  EXPECT_EQ(a.toString(), "0,0,1,1,0");
  EXPECT_EQ(a.nranks(), 5);
  EXPECT_EQ(a.nhosts(), 2);
  EXPECT_EQ(a.maxRanksPerHost(), 3);
  EXPECT_EQ(a, HostLayout::fromHostOf(std::vector<int>{0, 0, 1, 1, 0}));
  EXPECT_EQ(HostLayout::blocks(std::vector<int>{2, 3}).toString(), "0,0,1,1,1");
  EXPECT_FALSE(a == HostLayout::blocks(std::vector<int>{2, 3}));
  EXPECT_TRUE(HostLayout{}.empty());
  EXPECT_FALSE(HostLayout{} == a);
  EXPECT_TRUE(HostLayout{} < a || a < HostLayout{});
}

TEST(HierarchicalTest, RejectsALayoutOfAnotherSize) {
  for (Collective c : kHierarchical) {
    const CollectiveArgs args{c, 8, 4, 0, -1, false, 1, HostLayout::blocks(std::vector<int>{2, 3})};
    const Algorithm* algorithm = findAlgorithm(c, "hierarchical");
    EXPECT_FALSE(algorithm->supports(args));
    RankSchedule out;
    EXPECT_EQ(algorithm->build(args, 0, &out).code(), Code::kInvalidArgument);
  }
}

// Elements rank r sends to ranks on other hosts, and messages it sends there.
std::pair<uint64_t, int> crossHostTraffic(const Schedule& s, const HostLayout& hosts, int r) {
  uint64_t elements = 0;
  int messages = 0;
  for (const Channel& channel : s.ranks[r].channels)
    for (const Step& step : channel.steps)
      if (step.kind == StepKind::kSend && hosts.hostOf(step.peer) != hosts.hostOf(r)) {
        elements += step.count();
        ++messages;
      }
  return {elements, messages};
}

TEST(HierarchicalTest, AllReduceSendsEachSliceAcrossHostsOnceEachWay) {
  // 3 hosts of 4 ranks, 1200 elements: every rank owns a 300-element slice and sends
  // 2 (H-1)/H of it across, in 2 (H-1) messages; a host's network carries 2 (H-1)/H N.
  const HostLayout hosts = HostLayout::blocks(std::vector<int>{4, 4, 4});
  const CollectiveArgs args{Collective::kAllReduce, 1200, 12, 0, -1, false, 1, hosts};
  Schedule s;
  ASSERT_TRUE(buildAll(*findAlgorithm(Collective::kAllReduce, "hierarchical"), args, &s).isOk());
  ASSERT_TRUE(verifySchedule(s).isOk());
  for (int r = 0; r < 12; ++r) {
    const auto [elements, messages] = crossHostTraffic(s, hosts, r);
    EXPECT_EQ(elements, 2 * 2 * 300 / 3) << "rank " << r;
    EXPECT_EQ(messages, 4) << "rank " << r;
  }
  Schedule ring;
  ASSERT_TRUE(buildAll(*findAlgorithm(Collective::kAllReduce, "ring"), args, &ring).isOk());
  int ringMessages = 0;
  for (int r = 0; r < 12; ++r)
    ringMessages += crossHostTraffic(ring, hosts, r).second;
  EXPECT_EQ(ringMessages, 3 * 2 * 11);  // 3 host boundaries, every ring step crosses them
}

TEST(HierarchicalTest, AllGatherAndReduceScatterCrossHostsOncePerBlock) {
  const HostLayout hosts = HostLayout::blocks(std::vector<int>{2, 2, 2});
  for (Collective c : {Collective::kAllGather, Collective::kReduceScatter}) {
    const CollectiveArgs args{c, 10, 6, 0, -1, false, 1, hosts};
    Schedule s;
    ASSERT_TRUE(buildAll(*findAlgorithm(c, "hierarchical"), args, &s).isOk());
    ASSERT_TRUE(verifySchedule(s).isOk());
    for (int r = 0; r < 6; ++r)
      EXPECT_EQ(crossHostTraffic(s, hosts, r), std::make_pair(uint64_t{2 * 10}, 2))
          << collectiveName(c) << " rank " << r;
  }
}

TEST(HierarchicalTest, BroadcastCrossesEachHostBoundaryWithTheVectorOnce) {
  const HostLayout hosts = HostLayout::blocks(std::vector<int>{2, 2, 2});
  const CollectiveArgs args{Collective::kBroadcast, 1000, 6, 3, -1, false, 1, hosts};
  Schedule s;
  ASSERT_TRUE(buildAll(*findAlgorithm(Collective::kBroadcast, "hierarchical"), args, &s).isOk());
  ASSERT_TRUE(verifySchedule(s).isOk());
  uint64_t total = 0;
  for (int r = 0; r < 6; ++r)
    total += crossHostTraffic(s, hosts, r).first;
  EXPECT_EQ(total, 2u * 1000);  // H-1 boundaries of the chain, the vector once over each
}

std::string chosen(Collective c, uint64_t bytes, const HostLayout& hosts) {
  const int n = hosts.nranks();
  const uint64_t count = c == Collective::kAllGather || c == Collective::kReduceScatter
                             ? bytes / 4 / static_cast<uint64_t>(n)
                             : bytes / 4;
  const CollectiveArgs args{c, count, n, 0, -1, false, 1, hosts};
  const Topology topology{hosts.nhosts(), hosts.maxRanksPerHost(), false};
  Result<const Algorithm*> algorithm =
      chooseAlgorithm(args, 4, AlgoOverrides{}, CostModel{}, topology);
  EXPECT_TRUE(algorithm.isOk()) << algorithm.status().toString();
  return algorithm.isOk() ? std::string((*algorithm)->name()) : "";
}

TEST(HierarchicalTest, PlannerChoosesItAcrossHostsOfSeveralRanks) {
  for (const std::vector<int>& sizes : {std::vector<int>{2, 2}, std::vector<int>{2, 2, 2},
                                        std::vector<int>{4, 4}, std::vector<int>{8, 8, 8, 8}}) {
    const HostLayout hosts = HostLayout::blocks(sizes);
    for (Collective c : kHierarchical)
      for (uint64_t bytes : {uint64_t{1} << 20, uint64_t{16} << 20})
        EXPECT_EQ(chosen(c, bytes, hosts), "hierarchical")
            << collectiveName(c) << " " << bytes << " B on " << hosts.toString();
  }
}

TEST(HierarchicalTest, PlannerKeepsToFlatAlgorithmsOnFlatLayouts) {
  for (const HostLayout& hosts : {HostLayout::blocks(std::vector<int>{8}),
                                  HostLayout::fromHostOf(std::vector<int>{0, 1, 2, 3})}) {
    for (Collective c : kHierarchical)
      for (uint64_t bytes : {uint64_t{64}, uint64_t{1} << 20, uint64_t{64} << 20})
        EXPECT_NE(chosen(c, bytes, hosts), "hierarchical")
            << collectiveName(c) << " " << bytes << " B on " << hosts.toString();
  }
}

}  // namespace
}  // namespace loom::algo
