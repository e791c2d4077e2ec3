// The cost model and the planner's default rule: least predicted time, the tuning profile.
#include "algorithms/cost_model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "algorithms/planner.h"

namespace loom::algo {
namespace {

using testing::HasSubstr;

CollectiveArgs argsOf(Collective c, uint64_t count, int n) {
  return {c, c == Collective::kBarrier ? 0u : count, n, 0, -1, false, 1};
}

std::string chosenName(Collective c, uint64_t bytes, int n, const Topology& topo = {},
                       const CostModel& model = {}, uint64_t windowBytes = 0) {
  CollectiveArgs args = argsOf(c, bytes / 4, n);
  args.windowBytes = windowBytes;
  Result<const Algorithm*> chosen = chooseAlgorithm(args, 4, AlgoOverrides{}, model, topo);
  EXPECT_TRUE(chosen.isOk()) << chosen.status().toString();
  return chosen.isOk() ? std::string((*chosen)->name()) : "";
}

TEST(CostModelTest, TheDefaultIsTheLeastPredictedTimeOfTheAlgorithmsThatCanRun) {
  const Topology topologies[] = {{1, 4, false}, {1, 8, true}, {3, 2, false}};
  for (int c = 0; c < kNumCollectives; ++c) {
    const Collective collective = static_cast<Collective>(c);
    if (collective == Collective::kSend || collective == Collective::kRecv) continue;
    for (int n : {1, 2, 3, 4, 5, 8, 13, 16}) {
      for (uint64_t count : {1ull, 100ull, 10000ull, 1ull << 22}) {
        for (const Topology& topo : topologies) {
          const CollectiveArgs args = argsOf(collective, count, n);
          const uint64_t bytes = collectiveBytes(args, 4);
          Choice choice;
          Result<const Algorithm*> chosen =
              chooseAlgorithm(args, 4, AlgoOverrides{}, CostModel{}, topo, &choice);
          ASSERT_TRUE(chosen.isOk()) << chosen.status().toString();
          ASSERT_TRUE((*chosen)->supports(args));
          EXPECT_EQ(choice.algorithm, *chosen);
          EXPECT_FALSE(choice.overridden);
          ASSERT_GE(choice.predictedUs, 0)
              << collectiveName(collective) << ": every built-in algorithm has a formula";
          for (const Algorithm* other : algorithmsFor(collective)) {
            if (!other->supports(args)) continue;
            const double us = predictUs(*other, args, bytes, CostModel{}, topo);
            EXPECT_GE(us, 0) << collectiveName(collective) << ":" << other->name();
            EXPECT_LE(choice.predictedUs, us)
                << collectiveName(collective) << " n=" << n << " count=" << count << " chose "
                << (*chosen)->name() << " over " << other->name();
          }
        }
      }
    }
  }
}

TEST(CostModelTest, SmallAllReducesTakeFewStepsLargeOnesMoveFewBytes) {
  EXPECT_EQ(chosenName(Collective::kAllReduce, 8, 8), "recursive_doubling");
  const std::string large = chosenName(Collective::kAllReduce, 64 << 20, 8);
  EXPECT_TRUE(large == "ring" || large == "rabenseifner") << large;
}

TEST(CostModelTest, BroadcastOnTwoRanksIsOneMessageAndLargeOnesPipeline) {
  // On two ranks binomial and chain are one transfer; large chains pay per slice.
  const std::string small2 = chosenName(Collective::kBroadcast, 8, 2);
  EXPECT_TRUE(small2 == "binomial" || small2 == "chain") << small2;
  EXPECT_EQ(chosenName(Collective::kBroadcast, 64 << 20, 2), "binomial");
  EXPECT_NE(chosenName(Collective::kBroadcast, 64 << 20, 8), "binomial");
  EXPECT_EQ(chosenName(Collective::kBroadcast, 8, 8), "binomial");
}

TEST(CostModelTest, OversubscriptionAndTheNetworkMakeEveryStepDearer) {
  const CollectiveArgs args = argsOf(Collective::kAllReduce, 1 << 16, 4);
  const Algorithm& ring = *findAlgorithm(Collective::kAllReduce, "ring");
  const double base = predictUs(ring, args, 1 << 18, CostModel{}, {1, 4, false});
  const double oversubscribed = predictUs(ring, args, 1 << 18, CostModel{}, {1, 4, true});
  const double network = predictUs(ring, args, 1 << 18, CostModel{}, {2, 2, false});
  EXPECT_NEAR(oversubscribed - base, 2 * 3 * CostModel{}.wakeUs, 1e-9);  // 2(n-1) steps
  EXPECT_GT(network, base);
  // With a dear wake-up, the 14-step ring loses to algorithms with log2(8) = 3 step pairs.
  CostModel m;
  m.wakeUs = 1000;
  EXPECT_NE(chosenName(Collective::kAllReduce, 1 << 16, 8, {1, 8, true}, m), "ring");
}

TEST(CostModelTest, ProfileRoundTripsAndKeepsDefaultsForMissingKeys) {
  CostModel m;
  m.intra = {1.25, 7.5};
  m.inter = {42, 0.75};
  m.reduceGbps = 3;
  m.stepUs = 0.125;
  m.wakeUs = 9;
  m.windowUs = 0.375;
  m.copyGbps = 11.5;
  Result<CostModel> back = CostModel::parse(m.format());
  ASSERT_TRUE(back.isOk()) << back.status().toString();
  EXPECT_EQ(*back, m);
  Result<CostModel> partial = CostModel::parse("# calibrated\n  intra.gbps 9  # shm\n\n");
  ASSERT_TRUE(partial.isOk()) << partial.status().toString();
  EXPECT_EQ(partial->intra.gbps, 9);
  EXPECT_EQ(partial->inter.gbps, CostModel{}.inter.gbps);
}

TEST(CostModelTest, BadProfilesNameTheLine) {
  auto error = [](const char* text) {
    Result<CostModel> m = CostModel::parse(text);
    EXPECT_FALSE(m.isOk()) << text;
    return m.isOk() ? std::string() : m.status().message();
  };
  EXPECT_THAT(error("intra.gbps 1\nbogus 3\n"), HasSubstr("line 2: unknown key 'bogus'"));
  EXPECT_THAT(error("intra.gbps fast\n"), HasSubstr("'fast' is not a number"));
  EXPECT_THAT(error("wake.us -1\n"), HasSubstr("'-1' is not a number >= 0"));
  EXPECT_THAT(error("inter.gbps 0\n"), HasSubstr("bandwidths must be > 0"));
  EXPECT_THAT(error("copy.gbps 0\n"), HasSubstr("bandwidths must be > 0"));
  EXPECT_THAT(error("step.us\n"), HasSubstr("'' is not a number"));
}

// The direct algorithms are priced by the window formula when the call has a window, and as
// message schedules otherwise; with a window, one flag hand-off beats any round of messages
// for small vectors, and pieces add a hand-off each.
TEST(CostModelTest, TheHostWindowPricesTheDirectAlgorithms) {
  const Algorithm& oneShot = *findAlgorithm(Collective::kAllReduce, "one_shot");
  const Algorithm& twoShot = *findAlgorithm(Collective::kAllReduce, "two_shot");
  CollectiveArgs args = argsOf(Collective::kAllReduce, 2, 2);
  const CostModel m;  // 8 bytes: 2 floats
  const double messages = predictUs(oneShot, args, 8, m, {1, 2, false});
  args.windowBytes = 1 << 20;
  const double window = predictUs(oneShot, args, 8, m, {1, 2, false});
  EXPECT_LT(window, messages);
  EXPECT_NEAR(window,
              m.stepUs + m.windowUs + 8 * (1e-3 / m.copyGbps) +
                  8 * (1e-3 / m.copyGbps + 1e-3 / m.reduceGbps),
              1e-9);
  EXPECT_EQ(chosenName(Collective::kAllReduce, 8, 2, {1, 2, false}, m, 1 << 20), "one_shot");
  // 4 MiB through a 1 MiB window: 4 rounds of two hand-offs.
  const double fourRounds = predictUs(twoShot, args, 4 << 20, m, {1, 2, false});
  args.windowBytes = 4 << 20;
  const double oneRound = predictUs(twoShot, args, 4 << 20, m, {1, 2, false});
  EXPECT_NEAR(fourRounds - oneRound, 6 * m.windowUs, 1e-9);
  // Oversubscribed, every hand-off pays a wake-up.
  EXPECT_NEAR(predictUs(twoShot, args, 4 << 20, m, {1, 2, true}) - oneRound, 2 * m.wakeUs, 1e-9);
}

// Every collective with a one_shot runs it in the window when there is one (and, for the two
// that stage a piece of every block, when the window holds one element of each), and the
// planner picks it for 8 bytes on two ranks there: one hand-off, no message.
TEST(CostModelTest, EveryOneShotRunsInTheWindowAndWinsSmallCalls) {
  const CostModel m;
  for (Collective c : {Collective::kAllReduce, Collective::kAllGather, Collective::kReduceScatter,
                       Collective::kBroadcast, Collective::kReduce, Collective::kAllToAll}) {
    SCOPED_TRACE(collectiveName(c));
    const Algorithm* oneShot = findAlgorithm(c, "one_shot");
    ASSERT_NE(oneShot, nullptr);
    CollectiveArgs args = argsOf(c, 2, 2);
    EXPECT_FALSE(runsInWindow(*oneShot, args));
    args.windowBytes = 1 << 20;
    EXPECT_TRUE(runsInWindow(*oneShot, args));
    args.nranks = 1 << 20;  // a piece of every block would not fit
    const bool perBlock = c == Collective::kReduceScatter || c == Collective::kAllToAll;
    EXPECT_EQ(runsInWindow(*oneShot, args), !perBlock);
    EXPECT_EQ(chosenName(c, 8, 2, {1, 2, false}, m, 1 << 20), "one_shot");
  }
}

TEST(CostModelTest, AnOverrideIsReportedWithItsPrediction) {
  Result<AlgoOverrides> overrides = parseAlgoOverrides("allreduce:ring");
  ASSERT_TRUE(overrides.isOk());
  Choice choice;
  Result<const Algorithm*> chosen = chooseAlgorithm(argsOf(Collective::kAllReduce, 2, 8), 4,
                                                    *overrides, CostModel{}, Topology{}, &choice);
  ASSERT_TRUE(chosen.isOk());
  EXPECT_EQ((*chosen)->name(), "ring");
  EXPECT_TRUE(choice.overridden);
  EXPECT_GT(choice.predictedUs, 0);
}

// A measured.np<N> line (loom-perf --calibrate --tune N) round-trips through the profile text and
// decides the calls it holds: N ranks, one host, with the host window, and a size in a range.
TEST(CostModelTest, MeasuredChoicesRoundTripAndDecideOnlyTheCallsTheyHold) {
  Result<CostModel> m = CostModel::parse(
      "copy.gbps 20\n"
      "measured.np4 allreduce:0-64K@ring,64K-inf@recursive_doubling;alltoall:0-1K@bruck\n"
      "measured.np2 broadcast:0-inf@binomial  # two ranks\n");
  ASSERT_TRUE(m.isOk()) << m.status().toString();
  ASSERT_EQ(m->measured.size(), 4u);
  EXPECT_EQ(m->measured[0].nranks, 2);  // sorted by rank count
  EXPECT_EQ(m->measured[1].choice.maxBytes, 64u << 10);
  Result<CostModel> back = CostModel::parse(m->format());
  ASSERT_TRUE(back.isOk()) << back.status().toString() << "\n" << m->format();
  EXPECT_EQ(*back, *m);
  EXPECT_THAT(m->format(), HasSubstr("measured.np4 allreduce:0-64K@ring,64K-inf@recursive_doubling;"
                                     "alltoall:0-1K@bruck\n"));

  const Topology oneHost{1, 4, true};
  constexpr uint64_t kWindow = 1 << 18;
  EXPECT_EQ(chosenName(Collective::kAllReduce, 4096, 4, oneHost, *m, kWindow), "ring");
  EXPECT_EQ(chosenName(Collective::kAllReduce, 1 << 20, 4, oneHost, *m, kWindow),
            "recursive_doubling");
  EXPECT_EQ(chosenName(Collective::kAllToAll, 64, 4, oneHost, *m, kWindow), "bruck");  // 256 B
  EXPECT_EQ(chosenName(Collective::kBroadcast, 1 << 20, 2, {1, 2, false}, *m, kWindow), "binomial");
  // Elsewhere the formulas decide, exactly as without the lines.
  CostModel formulas = *m;
  formulas.measured.clear();
  const auto same = [&](Collective c, uint64_t bytes, int n, const Topology& topo,
                        uint64_t window) {
    EXPECT_EQ(chosenName(c, bytes, n, topo, *m, window),
              chosenName(c, bytes, n, topo, formulas, window))
        << collectiveName(c) << " " << bytes << " B on " << n;
  };
  same(Collective::kAllToAll, 4096, 4, oneHost, kWindow);         // no range holds 4 KiB
  same(Collective::kAllReduce, 4096, 8, {1, 8, true}, kWindow);   // 8 ranks were not measured
  same(Collective::kAllReduce, 4096, 4, oneHost, 0);              // threads: no window
  same(Collective::kAllReduce, 4096, 4, {2, 2, false}, kWindow);  // two hosts
  same(Collective::kReduce, 4096, 4, oneHost, kWindow);           // a collective not measured
  Choice choice;
  CollectiveArgs args = argsOf(Collective::kAllReduce, 1024, 4);
  args.windowBytes = kWindow;
  ASSERT_TRUE(chooseAlgorithm(args, 4, AlgoOverrides{}, *m, oneHost, &choice).isOk());
  EXPECT_TRUE(choice.measured);
  EXPECT_FALSE(choice.overridden);
  // LOOM_ALGO still comes first.
  Result<AlgoOverrides> overrides = parseAlgoOverrides("allreduce:two_shot");
  ASSERT_TRUE(overrides.isOk());
  Result<const Algorithm*> forced = chooseAlgorithm(args, 4, *overrides, *m, oneHost, &choice);
  ASSERT_TRUE(forced.isOk());
  EXPECT_EQ((*forced)->name(), "two_shot");
  EXPECT_TRUE(choice.overridden);
  EXPECT_FALSE(choice.measured);
}

TEST(CostModelTest, BadMeasuredLinesNameTheLineAndTheProblem) {
  auto error = [](const char* text) {
    Result<CostModel> m = CostModel::parse(text);
    EXPECT_FALSE(m.isOk()) << text;
    return m.isOk() ? std::string() : m.status().message();
  };
  EXPECT_THAT(error("measured.np4 allreduce:warp\n"),
              HasSubstr("line 1: LOOM_ALGO: unknown algorithm 'warp'"));
  EXPECT_THAT(error("step.us 1\nmeasured.np1 allreduce:ring\n"),
              HasSubstr("line 2: 'measured.np1' needs a rank count >= 2"));
  EXPECT_THAT(error("measured.npx allreduce:ring\n"), HasSubstr("bad rank count"));
  EXPECT_THAT(error("measured.np2 allreduce:ring\nmeasured.np2 alltoall:bruck\n"),
              HasSubstr("line 2: 'measured.np2' is given twice"));
  EXPECT_THAT(error("measured.np2 \n"), HasSubstr("has no algorithm"));
  EXPECT_THAT(error("measured.np2 allreduce:0-1K@ring,2K-1K@ring\n"), HasSubstr("is empty"));
}

}  // namespace
}  // namespace loom::algo
