// The schedule IR's helpers: names, buffer sizes, the in-place layout, chunks and the listing.
#include "algorithms/schedule.h"

#include <gtest/gtest.h>

#include <string>

namespace loom::algo {
namespace {

CollectiveArgs argsOf(Collective c, uint64_t count, int nranks, int root = 0,
                      bool inPlace = false) {
  return {c, count, nranks, root, -1, inPlace, 1};
}

TEST(ScheduleTest, NamesEveryCollectiveBufferAndStepKind) {
  EXPECT_STREQ(collectiveName(Collective::kAllReduce), "allreduce");
  EXPECT_STREQ(collectiveName(Collective::kReduceScatter), "reducescatter");
  EXPECT_STREQ(collectiveName(Collective::kBarrier), "barrier");
  for (int c = 0; c < kNumCollectives; ++c) {
    EXPECT_STRNE(collectiveName(static_cast<Collective>(c)), "unknown");
  }
  EXPECT_STREQ(bufferName(BufferId::kScratch), "scratch");
  EXPECT_STREQ(stepKindName(StepKind::kRecvReduce), "recvreduce");
}

TEST(ScheduleTest, OnlyAllReduceReduceAndReduceScatterAreReductions) {
  for (int c = 0; c < kNumCollectives; ++c) {
    const Collective collective = static_cast<Collective>(c);
    const bool expected = collective == Collective::kAllReduce ||
                          collective == Collective::kReduce ||
                          collective == Collective::kReduceScatter;
    EXPECT_EQ(isReduction(collective), expected) << collectiveName(collective);
  }
}

TEST(ScheduleTest, StepCountIsTheRegionItMoves) {
  EXPECT_EQ(Step::send(1, {BufferId::kInput, 0, 5}).count(), 5u);
  EXPECT_EQ(Step::recv(1, {BufferId::kOutput, 2, 3}).count(), 3u);
  EXPECT_EQ(Step::copy({BufferId::kInput, 0, 4}, {BufferId::kOutput, 0, 4}).count(), 4u);
  const Step rr = Step::recvReduce(2, {BufferId::kInput, 0, 4}, {BufferId::kOutput, 0, 4}, true);
  EXPECT_EQ(rr.peer, 2);
  EXPECT_TRUE(rr.finalize);
  EXPECT_EQ(rr.kind, StepKind::kRecvReduce);
}

struct SizeCase {
  Collective collective;
  uint64_t rootIn, rootOut, otherIn, otherOut;  // for count 3, nranks 4 (root 1, other 2)
};

TEST(ScheduleTest, BufferSizesFollowTheApiOfEachCollective) {
  const SizeCase cases[] = {
      {Collective::kAllReduce, 3, 3, 3, 3},
      {Collective::kBroadcast, 3, 3, 0, 3},
      {Collective::kReduce, 3, 3, 3, 0},
      {Collective::kAllGather, 3, 12, 3, 12},
      {Collective::kReduceScatter, 12, 3, 12, 3},
      {Collective::kAllToAll, 12, 12, 12, 12},
      {Collective::kGather, 3, 12, 3, 0},
      {Collective::kScatter, 12, 3, 0, 3},
      {Collective::kSend, 3, 0, 3, 0},
      {Collective::kRecv, 0, 3, 0, 3},
      {Collective::kBarrier, 0, 0, 0, 0},
  };
  for (const SizeCase& c : cases) {
    const CollectiveArgs args = argsOf(c.collective, 3, 4, /*root=*/1);
    SCOPED_TRACE(collectiveName(c.collective));
    EXPECT_EQ(inputCount(args, 1), c.rootIn);
    EXPECT_EQ(outputCount(args, 1), c.rootOut);
    EXPECT_EQ(inputCount(args, 2), c.otherIn);
    EXPECT_EQ(outputCount(args, 2), c.otherOut);
  }
}

TEST(ScheduleTest, NothingAliasesOutOfPlace) {
  Alias alias;
  for (int c = 0; c < kNumCollectives; ++c) {
    EXPECT_FALSE(aliasOf(argsOf(static_cast<Collective>(c), 3, 4), 0, &alias));
  }
}

TEST(ScheduleTest, InPlaceLayoutMatchesTheApi) {
  Alias a;
  ASSERT_TRUE(aliasOf(argsOf(Collective::kAllReduce, 3, 4, 0, true), 2, &a));
  EXPECT_EQ(a.aliased, BufferId::kInput);
  EXPECT_EQ(a.base, BufferId::kOutput);
  EXPECT_EQ(a.offset, 0u);
  ASSERT_TRUE(aliasOf(argsOf(Collective::kAllGather, 3, 4, 0, true), 2, &a));
  EXPECT_EQ(a.aliased, BufferId::kInput);
  EXPECT_EQ(a.offset, 6u);  // input == output[rank * count ...]
  ASSERT_TRUE(aliasOf(argsOf(Collective::kReduceScatter, 3, 4, 0, true), 2, &a));
  EXPECT_EQ(a.aliased, BufferId::kOutput);
  EXPECT_EQ(a.base, BufferId::kInput);
  EXPECT_EQ(a.offset, 6u);  // output == input[rank * count ...]
  ASSERT_TRUE(aliasOf(argsOf(Collective::kGather, 3, 4, 1, true), 1, &a));
  EXPECT_EQ(a.offset, 3u);
  EXPECT_FALSE(aliasOf(argsOf(Collective::kGather, 3, 4, 1, true), 2, &a));
  ASSERT_TRUE(aliasOf(argsOf(Collective::kScatter, 3, 4, 1, true), 1, &a));
  EXPECT_EQ(a.aliased, BufferId::kOutput);
  EXPECT_EQ(a.offset, 3u);
  EXPECT_FALSE(aliasOf(argsOf(Collective::kScatter, 3, 4, 1, true), 0, &a));
  EXPECT_TRUE(aliasOf(argsOf(Collective::kBroadcast, 3, 4, 1, true), 1, &a));
  EXPECT_FALSE(aliasOf(argsOf(Collective::kBroadcast, 3, 4, 1, true), 0, &a));
  EXPECT_TRUE(aliasOf(argsOf(Collective::kReduce, 3, 4, 1, true), 1, &a));
  EXPECT_FALSE(aliasOf(argsOf(Collective::kReduce, 3, 4, 1, true), 3, &a));
  EXPECT_TRUE(aliasOf(argsOf(Collective::kAllToAll, 3, 4, 1, true), 3, &a));
  EXPECT_FALSE(aliasOf(argsOf(Collective::kSend, 3, 4, 1, true), 3, &a));
  EXPECT_FALSE(aliasOf(argsOf(Collective::kBarrier, 0, 4, 1, true), 3, &a));
}

TEST(ScheduleTest, CanonicalizeRewritesTheAliasedBufferOntoItsBase) {
  RankSchedule s;
  s.channels.resize(1);
  s.channels[0].steps.push_back(Step::copy({BufferId::kInput, 1, 2}, {BufferId::kScratch, 0, 2}));
  s.channels[0].steps.push_back(Step::send(0, {BufferId::kOutput, 0, 3}));
  canonicalizeInPlace(argsOf(Collective::kAllGather, 3, 4, 0, true), 2, &s);
  EXPECT_EQ(s.channels[0].steps[0].src, (Region{BufferId::kOutput, 7, 2}));
  EXPECT_EQ(s.channels[0].steps[0].dst, (Region{BufferId::kScratch, 0, 2}));
  EXPECT_EQ(s.channels[0].steps[1].src, (Region{BufferId::kOutput, 0, 3}));
}

TEST(ScheduleTest, CanonicalizeLeavesOutOfPlaceSchedulesAlone) {
  RankSchedule s;
  s.channels.resize(1);
  s.channels[0].steps.push_back(Step::copy({BufferId::kInput, 1, 2}, {BufferId::kOutput, 0, 2}));
  const RankSchedule before = s;
  canonicalizeInPlace(argsOf(Collective::kAllReduce, 3, 4), 0, &s);
  EXPECT_EQ(s.channels[0].steps, before.channels[0].steps);
}

TEST(ScheduleTest, ChunksCoverTheTotalWithTheFirstOnesLarger) {
  for (uint64_t total : {0, 1, 5, 7, 16, 1001}) {
    for (int parts : {1, 2, 3, 7, 17}) {
      uint64_t next = 0;
      for (int i = 0; i < parts; ++i) {
        EXPECT_EQ(chunkOffset(total, parts, i), next);
        const uint64_t count = chunkCount(total, parts, i);
        EXPECT_EQ(count, total / parts + (static_cast<uint64_t>(i) < total % parts ? 1 : 0));
        next += count;
      }
      EXPECT_EQ(next, total);
      EXPECT_EQ(chunkOffset(total, parts, parts), total);
    }
  }
}

TEST(ScheduleTest, DescribeListsOneStepPerLine) {
  RankSchedule s;
  s.scratchCount = 8;
  s.channels.resize(2);
  s.channels[0].steps.push_back(Step::send(1, {BufferId::kInput, 0, 4}));
  s.channels[1].steps.push_back(
      Step::recvReduce(3, {BufferId::kInput, 4, 4}, {BufferId::kScratch, 0, 4}, true));
  EXPECT_EQ(describe(s, 2),
            "r2 scratch 8 elements\n"
            "r2 c0   0: send       -> r1  in[0+4]\n"
            "r2 c1   0: recvreduce <- r3  in[4+4] -> scratch[0+4]  finalize\n");
  EXPECT_EQ(describeStep(Step::reduce({BufferId::kInput, 0, 2}, {BufferId::kScratch, 2, 2},
                                      {BufferId::kOutput, 0, 2})),
            "reduce     in[0+2], scratch[2+2] -> out[0+2]");
}

}  // namespace
}  // namespace loom::algo
