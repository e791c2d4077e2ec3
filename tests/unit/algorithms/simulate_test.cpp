// The simulator (algorithms/simulate.h): hand-computed cases, contention, the ring/tree
// ordering the α-β model predicts, exact vs rounds, and networks built from topologies.
#include <gtest/gtest.h>

#include "algorithms/algorithm.h"
#include "algorithms/simulate.h"
#include "topology/cluster.h"
#include "topology/synthetic.h"

namespace loom::algo {
namespace {

constexpr double kAlphaUs = 5;
constexpr double kGbps = 10;  // 1e4 bytes per microsecond

SimOptions plainOptions() {
  SimOptions o;
  o.stepUs = 0;
  return o;
}

Schedule sendOf(int nranks, std::vector<std::pair<int, int>> pairs, uint64_t count) {
  Schedule s;
  s.args.nranks = nranks;
  s.ranks.resize(static_cast<size_t>(nranks));
  for (auto& rs : s.ranks)
    rs.channels.resize(1);
  uint64_t at = 0;
  for (auto [from, to] : pairs) {
    s.ranks[static_cast<size_t>(from)].channels[0].steps.push_back(
        Step::send(to, {BufferId::kInput, 0, count}));
    s.ranks[static_cast<size_t>(to)].channels[0].steps.push_back(
        Step::recv(from, {BufferId::kOutput, at, count}));
    at += count;
  }
  return s;
}

TEST(SimulateTest, TwoRanksSendTakesAlphaPlusBytesOverBandwidth) {
  const UniformNetwork net(2, kAlphaUs, kGbps, 100);
  for (uint64_t count : {uint64_t{1}, uint64_t{1000}, uint64_t{1} << 20}) {
    Result<SimResult> r = simulate(sendOf(2, {{0, 1}}, count), net, plainOptions());
    ASSERT_TRUE(r.isOk()) << r.status().toString();
    const double bytes = static_cast<double>(count * 4);
    EXPECT_NEAR(r->timeUs, kAlphaUs + bytes / (kGbps * 1e3), 1e-6) << count;
    EXPECT_EQ(r->method, "exact");
  }
}

TEST(SimulateTest, StepOverheadIsPaidOncePerStep) {
  const UniformNetwork net(2, kAlphaUs, kGbps, 100);
  SimOptions o = plainOptions();
  o.stepUs = 2;
  const uint64_t count = uint64_t{1} << 20;  // 4 MiB: 8 slices
  Result<SimResult> r = simulate(sendOf(2, {{0, 1}}, count), net, o);
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(r->slices, 16u);  // both sides
  EXPECT_NEAR(r->timeUs, 2 + kAlphaUs + count * 4 / (kGbps * 1e3), 1e-6);
}

TEST(SimulateTest, TwoFlowsSharingOneLinkTakeTwiceAsLong) {
  const UniformNetwork net(3, 0, kGbps, 100);
  const uint64_t count = 1 << 18;
  Result<SimResult> one = simulate(sendOf(3, {{0, 2}}, count), net, plainOptions());
  // Ranks 0 and 1 both send to rank 2: its receive port carries both.
  Result<SimResult> two = simulate(sendOf(3, {{0, 2}, {1, 2}}, count), net, plainOptions());
  ASSERT_TRUE(one.isOk() && two.isOk());
  EXPECT_NEAR(two->timeUs, 2 * one->timeUs, 1e-6);
  // Disjoint pairs do not contend.
  const UniformNetwork four(4, 0, kGbps, 100);
  Result<SimResult> apart = simulate(sendOf(4, {{0, 1}, {2, 3}}, count), four, plainOptions());
  ASSERT_TRUE(apart.isOk());
  EXPECT_NEAR(apart->timeUs, one->timeUs, 1e-6);
}

TEST(SimulateTest, UnmatchedSendIsAnError) {
  Schedule s = sendOf(2, {{0, 1}}, 4);
  s.ranks[1].channels[0].steps.clear();
  const UniformNetwork net(2, 1, 1, 1);
  Result<SimResult> r = simulate(s, net, plainOptions());
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("no matching message"), std::string::npos);
}

double simulateAllReduce(std::string_view name, int n, uint64_t bytes, const SimNetwork& net) {
  const Algorithm* a = findAlgorithm(Collective::kAllReduce, name);
  EXPECT_NE(a, nullptr) << name;
  CollectiveArgs args;
  args.collective = Collective::kAllReduce;
  args.nranks = n;
  args.count = bytes / 4;
  Result<SimResult> r = simulateAlgorithm(*a, args, net, SimOptions{});
  EXPECT_TRUE(r.isOk()) << r.status().toString();
  return r.isOk() ? r->timeUs : -1;
}

TEST(SimulateTest, TreeWinsWhenLatencyDominatesAndRingWhenBandwidthDoes) {
  const int n = 32;
  const UniformNetwork net(n, kAlphaUs, kGbps, 100);
  const double ringSmall = simulateAllReduce("ring", n, 64, net);
  const double treeSmall = simulateAllReduce("double_binary_tree", n, 64, net);
  EXPECT_LT(treeSmall, ringSmall / 2);
  const double ringLarge = simulateAllReduce("ring", n, 256 << 20, net);
  const double treeLarge = simulateAllReduce("double_binary_tree", n, 256 << 20, net);
  EXPECT_LT(ringLarge, treeLarge);
  // The ring moves 2 (n-1)/n of the vector through each port: the bandwidth bound.
  const double bound = 2.0 * (n - 1) / n * (256 << 20) / (kGbps * 1e3);
  EXPECT_GT(ringLarge, bound);
  EXPECT_LT(ringLarge, bound * 1.05);
}

TEST(SimulateTest, RingPredictionMatchesTheCostModelFormula) {
  const int n = 8;
  const UniformNetwork net(n, kAlphaUs, kGbps, 1e6);
  const uint64_t bytes = 8 << 20;
  SimOptions o = plainOptions();
  o.maxSlicesPerStep = 1;  // the formula does not pipeline
  CollectiveArgs args;
  args.nranks = n;
  args.count = bytes / 4;
  Result<SimResult> r =
      simulateAlgorithm(*findAlgorithm(Collective::kAllReduce, "ring"), args, net, o);
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  const double formula = 2 * (n - 1) * (kAlphaUs + bytes / n / (kGbps * 1e3));
  EXPECT_NEAR(r->timeUs, formula, formula * 0.01);
}

TEST(SimulateTest, RoundsAgreeWithExactOnARing) {
  const int n = 16;
  const UniformNetwork net(n, kAlphaUs, kGbps, 100);
  CollectiveArgs args;
  args.nranks = n;
  args.count = (16 << 20) / 4;
  const Algorithm& ring = *findAlgorithm(Collective::kAllReduce, "ring");
  Result<SimResult> exact = simulateAlgorithm(ring, args, net, SimOptions{});
  SimOptions o;
  o.maxExactSteps = 0;  // force rounds
  Result<SimResult> rounds = simulateAlgorithm(ring, args, net, o);
  ASSERT_TRUE(exact.isOk() && rounds.isOk()) << rounds.status().toString();
  EXPECT_EQ(exact->method, "exact");
  EXPECT_EQ(rounds->method.rfind("rounds", 0), 0u) << rounds->method;
  EXPECT_NEAR(rounds->timeUs, exact->timeUs, exact->timeUs * 0.05);
}

TEST(SimulateTest, RoundsRejectAScheduleThatIsNotSymmetric) {
  const int n = 8;
  const UniformNetwork net(n, kAlphaUs, kGbps, 100);
  CollectiveArgs args;
  args.collective = Collective::kBroadcast;
  args.nranks = n;
  args.count = 1024;
  const RankBuilder build = [&](int rank, RankSchedule* out) {
    return findAlgorithm(Collective::kBroadcast, "binomial")->build(args, rank, out);
  };
  Result<SimResult> r = simulateRounds(args, build, net, SimOptions{});
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("not round-symmetric"), std::string::npos);
}

TEST(SimulateTest, DgxHostRingReachesNvlinkBandwidth) {
  Result<topo::System> host = topo::System::fromXml(topo::makeDgxH100("dgx"));
  ASSERT_TRUE(host.isOk());
  Result<std::unique_ptr<SimNetwork>> net = makeHostNetwork(*host, 8);
  ASSERT_TRUE(net.isOk()) << net.status().toString();
  SimRoute route;
  ASSERT_TRUE((*net)->route(0, 5, &route).isOk());
  EXPECT_EQ(route.links.size(), 2u);  // GPU0 -> NVSwitch -> GPU5
  const uint64_t bytes = uint64_t{1} << 30;
  const double us = simulateAllReduce("ring", 8, bytes, **net);
  const double busbw = 2.0 * 7 / 8 * bytes / us / 1e3;
  EXPECT_GT(busbw, 300);  // NV18 x 20.6 GB/s = 370.8 GB/s per direction
  EXPECT_LT(busbw, 371);
}

TEST(SimulateTest, ClusterRoutesCrossTheRightRails) {
  Result<topo::XmlNode> xml = topo::makeRailCluster(4, 2);
  ASSERT_TRUE(xml.isOk());
  Result<topo::Cluster> cluster = topo::Cluster::fromXml(*xml);
  ASSERT_TRUE(cluster.isOk());
  Result<std::unique_ptr<SimNetwork>> net = makeClusterNetwork(*cluster, 32);
  ASSERT_TRUE(net.isOk()) << net.status().toString();
  const SimNetwork& nw = **net;
  SimRoute sameLeaf, spine;
  ASSERT_TRUE(nw.route(3, 8 + 3, &sameLeaf).isOk());  // GPU3 of host 0 -> GPU3 of host 1
  ASSERT_TRUE(nw.route(3, 16 + 3, &spine).isOk());    // -> host 2, another leaf group
  EXPECT_EQ(spine.links.size(), sameLeaf.links.size() + 2);
  EXPECT_GT(spine.latencyUs, sameLeaf.latencyUs);
  bool nicPort = false;
  for (int l : sameLeaf.links)
    nicPort = nicPort || nw.links()[static_cast<size_t>(l)].name.find("NET") != std::string::npos;
  EXPECT_TRUE(nicPort);
  EXPECT_EQ(nw.rankName(11), "node001 GPU3");
  EXPECT_FALSE(makeClusterNetwork(*cluster, 33).isOk());
}

}  // namespace
}  // namespace loom::algo
