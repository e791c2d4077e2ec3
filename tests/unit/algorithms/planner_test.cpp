// The planner: LOOM_ALGO parsing, the default rule, and the choice between them.
#include "algorithms/planner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace loom::algo {
namespace {

using testing::AllOf;
using testing::HasSubstr;

const Algorithm* algo(Collective c, const char* name) {
  const Algorithm* found = findAlgorithm(c, name);
  EXPECT_NE(found, nullptr) << name;
  return found;
}

std::string parseError(const char* spec) {
  Result<AlgoOverrides> parsed = parseAlgoOverrides(spec);
  EXPECT_FALSE(parsed.isOk()) << "accepted '" << spec << "'";
  if (parsed.isOk()) return "";
  EXPECT_EQ(parsed.status().code(), Code::kInvalidArgument);
  return parsed.status().message();
}

CollectiveArgs broadcastOf(uint64_t count) {
  return {Collective::kBroadcast, count, 4, 0, -1, false, 1};
}

TEST(AlgoOverridesTest, EmptySpecGivesNoOverrides) {
  for (const char* spec : {"", "  ", ";", " ; ;"}) {
    Result<AlgoOverrides> parsed = parseAlgoOverrides(spec);
    ASSERT_TRUE(parsed.isOk()) << spec;
    EXPECT_TRUE(parsed->empty());
  }
}

TEST(AlgoOverridesTest, ParsesOneAlgorithmPerCollective) {
  Result<AlgoOverrides> parsed = parseAlgoOverrides("allreduce:ring;broadcast:chain");
  ASSERT_TRUE(parsed.isOk()) << parsed.status().toString();
  EXPECT_EQ(parsed->find(Collective::kAllReduce, 0), algo(Collective::kAllReduce, "ring"));
  EXPECT_EQ(parsed->find(Collective::kBroadcast, 1), algo(Collective::kBroadcast, "chain"));
  EXPECT_EQ(parsed->find(Collective::kBroadcast, UINT64_MAX),
            algo(Collective::kBroadcast, "chain"));
  EXPECT_EQ(parsed->find(Collective::kReduce, 100), nullptr);
}

TEST(AlgoOverridesTest, ParsesSizeRangesWithSuffixes) {
  Result<AlgoOverrides> parsed = parseAlgoOverrides("broadcast:0-64K@binomial,64K-inf@chain");
  ASSERT_TRUE(parsed.isOk()) << parsed.status().toString();
  const Algorithm* binomial = algo(Collective::kBroadcast, "binomial");
  const Algorithm* chain = algo(Collective::kBroadcast, "chain");
  EXPECT_EQ(parsed->find(Collective::kBroadcast, 0), binomial);
  EXPECT_EQ(parsed->find(Collective::kBroadcast, 65535), binomial);
  EXPECT_EQ(parsed->find(Collective::kBroadcast, 65536), chain);
  EXPECT_EQ(parsed->find(Collective::kBroadcast, uint64_t{1} << 40), chain);
}

TEST(AlgoOverridesTest, SizesUseBinarySuffixesAndGapsFallThrough) {
  Result<AlgoOverrides> parsed =
      parseAlgoOverrides("broadcast:1k-2M@chain, 1G-4g@binomial ; allgather:100-200@ring");
  ASSERT_TRUE(parsed.isOk()) << parsed.status().toString();
  EXPECT_EQ(parsed->find(Collective::kBroadcast, 1023), nullptr);
  EXPECT_EQ(parsed->find(Collective::kBroadcast, 1024), algo(Collective::kBroadcast, "chain"));
  EXPECT_EQ(parsed->find(Collective::kBroadcast, 2 << 20), nullptr);
  EXPECT_EQ(parsed->find(Collective::kBroadcast, 1ull << 30),
            algo(Collective::kBroadcast, "binomial"));
  EXPECT_EQ(parsed->find(Collective::kBroadcast, 4ull << 30), nullptr);
  EXPECT_EQ(parsed->find(Collective::kAllGather, 150), algo(Collective::kAllGather, "ring"));
}

TEST(AlgoOverridesTest, NamesAreCaseInsensitiveAndBlanksAreIgnored) {
  Result<AlgoOverrides> parsed = parseAlgoOverrides("  AllReduce : RING ;BROADCAST:Binomial ");
  ASSERT_TRUE(parsed.isOk()) << parsed.status().toString();
  EXPECT_EQ(parsed->find(Collective::kAllReduce, 8), algo(Collective::kAllReduce, "ring"));
  EXPECT_EQ(parsed->find(Collective::kBroadcast, 8), algo(Collective::kBroadcast, "binomial"));
}

TEST(AlgoOverridesTest, RejectsUnknownCollectiveNamingIt) {
  EXPECT_THAT(parseError("allreduc:ring"),
              AllOf(HasSubstr("unknown collective 'allreduc'"), HasSubstr("known: allreduce"),
                    HasSubstr("LOOM_ALGO")));
}

TEST(AlgoOverridesTest, RejectsUnknownAlgorithmListingTheKnownOnes) {
  EXPECT_THAT(parseError("broadcast:tree"),
              AllOf(HasSubstr("unknown algorithm 'tree' for broadcast"),
                    HasSubstr("known: chain, binomial")));
  EXPECT_THAT(parseError("broadcast:0-1K@ring"), HasSubstr("unknown algorithm 'ring'"));
}

TEST(AlgoOverridesTest, RejectsMalformedSizesAndRanges) {
  EXPECT_THAT(parseError("broadcast:0-64Q@chain"), HasSubstr("bad size '64Q'"));
  EXPECT_THAT(parseError("broadcast:x-64K@chain"), HasSubstr("bad size 'x'"));
  EXPECT_THAT(parseError("broadcast:64K@chain"), HasSubstr("bad range '64K'"));
  EXPECT_THAT(parseError("broadcast:0-1-2@chain"), HasSubstr("bad range '0-1-2'"));
  EXPECT_THAT(parseError("broadcast:64K-1K@chain"), HasSubstr("range '64K-1K' is empty"));
  EXPECT_THAT(parseError("broadcast:inf-inf@chain"), HasSubstr("'inf' can only end a range"));
  EXPECT_THAT(parseError("broadcast:0-99999999999999999999@chain"), HasSubstr("overflows"));
  EXPECT_THAT(parseError("broadcast:0-99999999999G@chain"), HasSubstr("overflows"));
}

TEST(AlgoOverridesTest, RejectsMalformedEntries) {
  EXPECT_THAT(parseError("allreduce"), HasSubstr("missing ':'"));
  EXPECT_THAT(parseError("allreduce:"), HasSubstr("empty choice"));
  EXPECT_THAT(parseError("broadcast:chain,0-1K@binomial"), HasSubstr("'chain' has no size range"));
  EXPECT_THAT(parseError("allreduce:ring;allreduce:ring"), HasSubstr("allreduce is given twice"));
}

TEST(PlannerTest, EveryCollectiveHasADefault) {
  const AlgoOverrides none;
  for (int c = 0; c < kNumCollectives; ++c) {
    const Collective collective = static_cast<Collective>(c);
    const CollectiveArgs args{
        collective, collective == Collective::kBarrier ? 0u : 100u, 4, 0, 1, false, 1};
    Result<const Algorithm*> chosen = chooseAlgorithm(args, 4, none);
    ASSERT_TRUE(chosen.isOk()) << collectiveName(collective) << ": " << chosen.status().toString();
    EXPECT_EQ((*chosen)->collective(), collective);
  }
}

TEST(PlannerTest, OverrideWinsOverTheDefault) {
  Result<AlgoOverrides> overrides = parseAlgoOverrides("broadcast:chain");
  ASSERT_TRUE(overrides.isOk());
  Result<const Algorithm*> chosen = chooseAlgorithm(broadcastOf(1), 4, *overrides);
  ASSERT_TRUE(chosen.isOk());
  EXPECT_EQ(*chosen, algo(Collective::kBroadcast, "chain"));
}

TEST(PlannerTest, RangesCompareTheLargestBufferInBytes) {
  const CollectiveArgs allgather{Collective::kAllGather, 1000, 8, 0, -1, false, 1};
  EXPECT_EQ(collectiveBytes(allgather, 4), 32000u);
  EXPECT_EQ(collectiveBytes(broadcastOf(1000), 2), 2000u);
  const CollectiveArgs huge{Collective::kAllToAll, UINT64_MAX / 2, 8, 0, -1, false, 1};
  EXPECT_EQ(collectiveBytes(huge, 4), UINT64_MAX);
}

TEST(PlannerTest, RejectsAnOverrideThatCannotRunTheCall) {
  Result<AlgoOverrides> overrides = parseAlgoOverrides("broadcast:chain");
  ASSERT_TRUE(overrides.isOk());
  CollectiveArgs args = broadcastOf(1);
  args.root = 9;  // outside [0, 4)
  Result<const Algorithm*> chosen = chooseAlgorithm(args, 4, *overrides);
  ASSERT_FALSE(chosen.isOk());
  EXPECT_THAT(chosen.status().message(),
              AllOf(HasSubstr("LOOM_ALGO chose broadcast:chain"), HasSubstr("root 9")));
}

}  // namespace
}  // namespace loom::algo
