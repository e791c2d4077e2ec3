// Properties of the built-in algorithms that correctness alone does not show: the registry,
// argument checks, determinism, bytes moved, scratch, copies, channel use and buffers touched.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "algorithms/algorithm.h"
#include "algorithms/verify.h"

namespace loom::algo {
namespace {

CollectiveArgs argsOf(Collective c, uint64_t count, int nranks, int root = 0, bool inPlace = false,
                      int nchannels = 1) {
  return {
      c,       count,    nranks, root, c == Collective::kSend || c == Collective::kRecv ? 1 : -1,
      inPlace, nchannels};
}

Schedule buildOrDie(Collective c, const char* name, const CollectiveArgs& args) {
  Schedule s;
  const Algorithm* algorithm = findAlgorithm(c, name);
  EXPECT_NE(algorithm, nullptr);
  if (algorithm == nullptr) return s;
  const Status status = buildAll(*algorithm, args, &s);
  EXPECT_TRUE(status.isOk()) << status.toString();
  return s;
}

uint64_t elementsSent(const RankSchedule& s) {
  uint64_t total = 0;
  for (const Channel& channel : s.channels) {
    for (const Step& step : channel.steps) {
      if (step.kind == StepKind::kSend) total += step.count();
    }
  }
  return total;
}

bool names(const RankSchedule& s, BufferId buffer) {
  for (const Channel& channel : s.channels) {
    for (const Step& step : channel.steps) {
      const bool src = step.kind != StepKind::kRecv && step.src.buffer == buffer;
      const bool src2 = step.kind == StepKind::kReduce && step.src2.buffer == buffer;
      const bool dst = step.kind != StepKind::kSend && step.dst.buffer == buffer;
      if (src || src2 || dst) return true;
    }
  }
  return false;
}

TEST(RegistryTest, EveryCollectiveHasAnAlgorithmRegisteredUnderIt) {
  for (int c = 0; c < kNumCollectives; ++c) {
    const Collective collective = static_cast<Collective>(c);
    const auto algorithms = algorithmsFor(collective);
    EXPECT_FALSE(algorithms.empty()) << collectiveName(collective);
    for (const Algorithm* a : algorithms) {
      EXPECT_EQ(a->collective(), collective);
      EXPECT_EQ(findAlgorithm(collective, a->name()), a);
    }
  }
  EXPECT_EQ(algorithmsFor(Collective::kBroadcast).size(), 6u);
}

TEST(RegistryTest, FindsNothingUnderAnUnknownNameOrTheWrongCollective) {
  EXPECT_EQ(findAlgorithm(Collective::kAllReduce, "tree"), nullptr);
  EXPECT_EQ(findAlgorithm(Collective::kReduce, "chain"), nullptr);
}

TEST(AlgorithmTest, RejectsMalformedArgumentsWithInvalidArgument) {
  const Algorithm* bcast = findAlgorithm(Collective::kBroadcast, "chain");
  ASSERT_NE(bcast, nullptr);
  RankSchedule out;
  const CollectiveArgs bad[] = {
      argsOf(Collective::kBroadcast, 4, 0),               // no ranks
      argsOf(Collective::kBroadcast, 4, 4, 4),            // root outside
      argsOf(Collective::kBroadcast, 4, 4, -1),           // root outside
      argsOf(Collective::kBroadcast, 4, 4, 0, false, 0),  // no channels
      argsOf(Collective::kAllReduce, 4, 4),               // another collective
  };
  for (const CollectiveArgs& args : bad) {
    EXPECT_FALSE(bcast->supports(args) && args.collective == Collective::kBroadcast);
    EXPECT_EQ(bcast->build(args, 0, &out).code(), Code::kInvalidArgument);
  }
  EXPECT_EQ(bcast->build(argsOf(Collective::kBroadcast, 4, 4), 4, &out).code(),
            Code::kInvalidArgument);  // rank outside
  const Algorithm* alltoall = findAlgorithm(Collective::kAllToAll, "pairwise");
  EXPECT_FALSE(alltoall->supports(argsOf(Collective::kAllToAll, UINT64_MAX / 2, 4)));
  const Algorithm* barrier = findAlgorithm(Collective::kBarrier, "dissemination");
  EXPECT_FALSE(barrier->supports(argsOf(Collective::kBarrier, 1, 4)));
}

TEST(AlgorithmTest, BuildIsDeterministic) {
  for (int c = 0; c < kNumCollectives; ++c) {
    const Collective collective = static_cast<Collective>(c);
    for (const Algorithm* a : algorithmsFor(collective)) {
      const uint64_t count = collective == Collective::kBarrier ? 0 : 37;
      const CollectiveArgs args = argsOf(collective, count, 6, 2, false, 2);
      RankSchedule first, second;
      ASSERT_TRUE(a->build(args, 3, &first).isOk());
      ASSERT_TRUE(a->build(args, 3, &second).isOk());
      ASSERT_EQ(first.channels.size(), second.channels.size());
      for (size_t i = 0; i < first.channels.size(); ++i) {
        EXPECT_EQ(first.channels[i].steps, second.channels[i].steps);
      }
      EXPECT_EQ(first.scratchCount, second.scratchCount);
    }
  }
}

TEST(AlgorithmTest, VerifiesWithMoreChannelsThanElements) {
  for (int c = 0; c < kNumCollectives; ++c) {
    const Collective collective = static_cast<Collective>(c);
    if (collective == Collective::kSend || collective == Collective::kRecv) continue;
    for (const Algorithm* a : algorithmsFor(collective)) {
      for (uint64_t count : {2, 3, 1000}) {
        for (int n : {3, 8}) {
          if (collective == Collective::kBarrier) count = 0;
          const CollectiveArgs args = argsOf(collective, count, n, n - 1, false, 4);
          Schedule s;
          ASSERT_TRUE(buildAll(*a, args, &s).isOk());
          const Status status = verifySchedule(s);
          EXPECT_TRUE(status.isOk()) << status.toString();
          for (const RankSchedule& rank : s.ranks) {
            EXPECT_LE(rank.channels.size(), std::max<uint64_t>(count, 1));
          }
        }
      }
    }
  }
}

TEST(AllReduceRingTest, EachRankSendsTwiceItsShareOfTheData) {
  for (int n : {2, 3, 8}) {
    const uint64_t count = 24ull * n;
    const Schedule s = buildOrDie(Collective::kAllReduce, "ring",
                                  argsOf(Collective::kAllReduce, count, n, 0, false, 2));
    for (const RankSchedule& rank : s.ranks) {
      EXPECT_EQ(elementsSent(rank), 2 * (n - 1) * count / n);
      EXPECT_EQ(rank.scratchCount, 0u);
    }
  }
}

TEST(AllGatherRingTest, EachRankSendsEveryOtherBlockOnce) {
  const Schedule s =
      buildOrDie(Collective::kAllGather, "ring", argsOf(Collective::kAllGather, 10, 5));
  for (const RankSchedule& rank : s.ranks) {
    EXPECT_EQ(elementsSent(rank), 4u * 10);
  }
}

TEST(ReduceScatterRingTest, UsesAtMostTwoBlocksOfScratch) {
  for (int n : {2, 3, 9}) {
    const Schedule s = buildOrDie(Collective::kReduceScatter, "ring",
                                  argsOf(Collective::kReduceScatter, 10, n, 0, true));
    for (const RankSchedule& rank : s.ranks) {
      EXPECT_EQ(rank.scratchCount, n > 2 ? 20u : 0u);
      EXPECT_EQ(elementsSent(rank), (n - 1) * 10u);
    }
  }
}

TEST(ReduceBinomialTest, LeavesSendTheirInputAndNoRankCopies) {
  const int n = 7;
  const Schedule s =
      buildOrDie(Collective::kReduce, "binomial", argsOf(Collective::kReduce, 5, n, /*root=*/3));
  for (int r = 0; r < n; ++r) {
    const RankSchedule& rank = s.ranks[r];
    const int v = (r - 3 + n) % n;
    for (const Step& step : rank.channels.at(0).steps) {
      EXPECT_NE(step.kind, StepKind::kCopy);
    }
    const bool leaf = v != 0 && (v % 2 == 1 || v + 1 == n);
    if (leaf) {
      const int parent = ((v - (v & -v)) + 3) % n;
      ASSERT_EQ(rank.channels[0].steps.size(), 1u);
      EXPECT_EQ(rank.channels[0].steps[0], Step::send(parent, {BufferId::kInput, 0, 5}));
      EXPECT_EQ(rank.scratchCount, 0u);
    } else if (v != 0) {
      EXPECT_EQ(rank.scratchCount, 5u);
      EXPECT_EQ(rank.channels[0].steps[0].src.buffer, BufferId::kInput);  // first combine
    }
    if (v != 0) {
      EXPECT_FALSE(names(rank, BufferId::kOutput)) << "rank " << r;
    }
  }
}

TEST(AlgorithmTest, NoRankNamesABufferTheApiDoesNotGiveIt) {
  struct Case {
    Collective collective;
    const char* name;
    BufferId absentOnNonRoots;
  };
  const Case cases[] = {
      {Collective::kBroadcast, "chain", BufferId::kInput},
      {Collective::kBroadcast, "binomial", BufferId::kInput},
      {Collective::kBroadcast, "double_binary_tree", BufferId::kInput},
      {Collective::kBroadcast, "scatter_allgather", BufferId::kInput},
      {Collective::kReduce, "binomial", BufferId::kOutput},
      {Collective::kGather, "linear", BufferId::kOutput},
      {Collective::kScatter, "linear", BufferId::kInput},
  };
  for (const Case& c : cases) {
    for (int n : {2, 5, 8}) {
      for (bool inPlace : {false, true}) {
        const Schedule s =
            buildOrDie(c.collective, c.name, argsOf(c.collective, 7, n, n / 2, inPlace, 2));
        for (int r = 0; r < n; ++r) {
          if (r == n / 2) continue;
          EXPECT_FALSE(names(s.ranks[r], c.absentOnNonRoots))
              << collectiveName(c.collective) << ":" << c.name << " rank " << r;
        }
      }
    }
  }
}

TEST(AllToAllPairwiseTest, InPlaceUsesOneBlockOfScratchAndOutOfPlaceNone) {
  for (int n : {2, 5, 6}) {
    const Schedule inPlace =
        buildOrDie(Collective::kAllToAll, "pairwise", argsOf(Collective::kAllToAll, 9, n, 0, true));
    const Schedule outOfPlace =
        buildOrDie(Collective::kAllToAll, "pairwise", argsOf(Collective::kAllToAll, 9, n));
    for (int r = 0; r < n; ++r) {
      EXPECT_EQ(inPlace.ranks[r].scratchCount, 9u);
      EXPECT_EQ(outOfPlace.ranks[r].scratchCount, 0u);
      EXPECT_EQ(elementsSent(inPlace.ranks[r]), (n - 1) * 9u);
      EXPECT_EQ(elementsSent(outOfPlace.ranks[r]), (n - 1) * 9u);
    }
  }
}

TEST(BarrierDisseminationTest, TakesCeilLog2RoundsOfOneSendAndOneReceive) {
  const int rounds[] = {0, 0, 1, 2, 2, 3, 3, 3, 3, 4};
  for (int n = 1; n < 10; ++n) {
    const Schedule s =
        buildOrDie(Collective::kBarrier, "dissemination", argsOf(Collective::kBarrier, 0, n));
    for (const RankSchedule& rank : s.ranks) {
      const size_t steps = rank.channels.empty() ? 0 : rank.channels[0].steps.size();
      EXPECT_EQ(steps, 2u * rounds[n]) << "nranks " << n;
    }
  }
}

}  // namespace
}  // namespace loom::algo
