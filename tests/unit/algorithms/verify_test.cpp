// The verifier rejects broken hand-written schedules, each with a message naming the problem,
// and accepts correct ones.
#include "algorithms/verify.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace loom::algo {
namespace {

using testing::AllOf;
using testing::HasSubstr;

Region in(uint64_t offset, uint64_t count) {
  return {BufferId::kInput, offset, count};
}
Region out(uint64_t offset, uint64_t count) {
  return {BufferId::kOutput, offset, count};
}
Region scratch(uint64_t offset, uint64_t count) {
  return {BufferId::kScratch, offset, count};
}

// A schedule written by hand, step by step.
class Hand {
 public:
  Hand(Collective collective, uint64_t count, int nranks, int root = 0, bool inPlace = false) {
    schedule_.args = {collective, count, nranks, root, -1, inPlace, 1};
    schedule_.algorithm = "hand";
    schedule_.ranks.resize(nranks);
  }
  Hand& add(int rank, Step step, int channel = 0) {
    auto& channels = schedule_.ranks[rank].channels;
    if (channels.size() <= static_cast<size_t>(channel)) channels.resize(channel + 1);
    channels[channel].steps.push_back(step);
    return *this;
  }
  Hand& scratchCount(int rank, uint64_t count) {
    schedule_.ranks[rank].scratchCount = count;
    return *this;
  }
  Status verify(const VerifyOptions& options = {}) const {
    return verifySchedule(schedule_, options);
  }
  std::string error(const VerifyOptions& options = {}) const {
    const Status status = verify(options);
    EXPECT_FALSE(status.isOk()) << "the verifier accepted a broken schedule";
    EXPECT_EQ(status.code(), Code::kInvalidArgument);
    return status.message();
  }

 private:
  Schedule schedule_;
};

// The two-rank ring AllReduce of 4 elements (chunk r = [2r, 2r+2)), optionally without finalize.
Hand twoRankRing(bool finalize) {
  Hand h(Collective::kAllReduce, 4, 2);
  for (int r = 0; r < 2; ++r) {
    const uint64_t mine = 2 * r, theirs = 2 * (1 - r);
    h.add(r, Step::send(1 - r, in(mine, 2)))
        .add(r, Step::recvReduce(1 - r, in(theirs, 2), out(theirs, 2), finalize))
        .add(r, Step::send(1 - r, out(theirs, 2)))
        .add(r, Step::recv(1 - r, out(mine, 2)));
  }
  return h;
}

TEST(VerifierTest, AcceptsHandWrittenRingAllReduce) {
  const Status status = twoRankRing(true).verify();
  EXPECT_TRUE(status.isOk()) << status.toString();
}

// Both ranks of a two-rank AllReduce exchange everything and combine: with RecvReduce each puts
// its own value first, so r0 computes x0 op x1 and r1 x1 op x0 (different bits for Max on +0 and
// -0); with a Reduce whose operands are ordered by rank, both compute x0 op x1.
Hand twoRankExchange(bool canonical) {
  Hand h(Collective::kAllReduce, 3, 2);
  for (int r = 0; r < 2; ++r) {
    h.add(r, Step::send(1 - r, in(0, 3))).scratchCount(r, 3);
    if (!canonical) {
      h.add(r, Step::recvReduce(1 - r, in(0, 3), out(0, 3), true));
      continue;
    }
    h.add(r, Step::recv(1 - r, scratch(0, 3)));
    h.add(r, r == 0 ? Step::reduce(in(0, 3), scratch(0, 3), out(0, 3), true)
                    : Step::reduce(scratch(0, 3), in(0, 3), out(0, 3), true));
  }
  return h;
}

TEST(VerifierTest, RejectsAllReduceRanksCombiningInDifferentOrders) {
  EXPECT_THAT(
      twoRankExchange(false).error(),
      AllOf(HasSubstr("r1 out[0] is (r1 r0) but r0's is (r0 r1)"), HasSubstr("different bits")));
  const Status status = twoRankExchange(true).verify();
  EXPECT_TRUE(status.isOk()) << status.toString();
}

TEST(VerifierTest, RejectsMissingFinalize) {
  EXPECT_THAT(twoRankRing(false).error(),
              AllOf(HasSubstr("wrong output"), HasSubstr("missing finalize"),
                    HasSubstr("expected in[0] of ranks {0,1}, finalized"), HasSubstr("r0 out[0]")));
}

TEST(VerifierTest, RejectsDoubleCountedContribution) {
  Hand h(Collective::kReduce, 4, 2, /*root=*/1);
  h.add(0, Step::send(1, in(0, 4))).add(0, Step::send(1, in(0, 4)));
  h.add(1, Step::recvReduce(0, in(0, 4), out(0, 4)))
      .add(1, Step::recvReduce(0, out(0, 4), out(0, 4), true));
  EXPECT_THAT(h.error(), AllOf(HasSubstr("double counts rank 0"), HasSubstr("r1 c0 step 1"),
                               HasSubstr("at out[0]")));
}

TEST(VerifierTest, RejectsCombiningAFinalizedValue) {
  Hand h(Collective::kReduce, 4, 2, /*root=*/1);
  h.add(0, Step::send(1, in(0, 4))).add(0, Step::send(1, in(0, 4)));
  h.add(1, Step::recvReduce(0, in(0, 4), out(0, 4), true))
      .add(1, Step::recvReduce(0, out(0, 4), out(0, 4)));
  EXPECT_THAT(h.error(), AllOf(HasSubstr("finalized value must not be combined again"),
                               HasSubstr("r1 c0 step 1")));
}

TEST(VerifierTest, RejectsFinalizingBeforeEveryRankContributed) {
  Hand h(Collective::kReduce, 4, 3, /*root=*/0);
  h.add(1, Step::send(0, in(0, 4))).add(2, Step::send(0, in(0, 4)));
  h.add(0, Step::recvReduce(1, in(0, 4), out(0, 4), true))
      .add(0, Step::recvReduce(2, out(0, 4), out(0, 4)));
  EXPECT_THAT(h.error(), AllOf(HasSubstr("finalizes in[0] of ranks {0,1}, which lacks rank 2"),
                               HasSubstr("r0 c0 step 0")));
}

TEST(VerifierTest, RejectsCombiningDifferentElements) {
  Hand h(Collective::kReduce, 2, 2, /*root=*/1);
  h.add(0, Step::send(1, in(0, 1)));
  h.add(1, Step::recvReduce(0, in(1, 1), out(1, 1), true));
  EXPECT_THAT(h.error(), HasSubstr("combines different elements: in[1] of rank 1 with in[0]"));
}

TEST(VerifierTest, RejectsWrongOutput) {
  Hand h(Collective::kGather, 2, 3, /*root=*/0);
  h.add(1, Step::send(0, in(0, 2))).add(2, Step::send(0, in(0, 2)));
  h.add(0, Step::recv(1, out(4, 2)))  // rank 1's block is out[2..4)
      .add(0, Step::recv(2, out(2, 2)))
      .add(0, Step::copy(in(0, 2), out(0, 2)));
  EXPECT_THAT(h.error(),
              AllOf(HasSubstr("wrong output"),
                    HasSubstr("r0 out[2]: expected in[0] of rank 1, seen in[0] of rank 2"),
                    HasSubstr("4 wrong elements on 1 ranks")));
}

TEST(VerifierTest, RejectsOutputThatNothingWrote) {
  Hand h(Collective::kBroadcast, 4, 2, /*root=*/0);
  h.add(0, Step::copy(in(0, 4), out(0, 4)));
  EXPECT_THAT(h.error(), HasSubstr("r1 out[0]: expected in[0] of rank 0, seen nothing"));
}

TEST(VerifierTest, RejectsOutOfBoundsRegion) {
  Hand h(Collective::kBroadcast, 4, 2, /*root=*/0);
  h.add(0, Step::send(1, in(2, 4))).add(0, Step::copy(in(0, 4), out(0, 4)));
  h.add(1, Step::recv(0, out(0, 4)));
  EXPECT_THAT(h.error(), AllOf(HasSubstr("r0 c0 step 0"),
                               HasSubstr("ends at element 6, past the 4 elements of r0's input")));
}

TEST(VerifierTest, RejectsWriteIntoInput) {
  Hand h(Collective::kAllGather, 1, 2);
  h.add(0, Step::send(1, in(0, 1))).add(0, Step::copy(in(0, 1), out(0, 1)));
  h.add(1, Step::recv(0, in(0, 1)));
  EXPECT_THAT(h.error(), AllOf(HasSubstr("r1 c0 step 0"), HasSubstr("writes into the input")));
}

TEST(VerifierTest, RejectsReferenceToABufferTheRankDoesNotHave) {
  Hand h(Collective::kReduce, 4, 2, /*root=*/0);
  h.add(1, Step::copy(in(0, 4), out(0, 4)));  // a non-root's recvbuff may be NULL
  EXPECT_THAT(h.error(), AllOf(HasSubstr("r1 c0 step 0"), HasSubstr("r1 has no output buffer"),
                               HasSubstr("not the root")));
}

TEST(VerifierTest, RejectsDeadlockAndNamesTheWaitingCycle) {
  Hand h(Collective::kAllGather, 1, 2);
  for (int r = 0; r < 2; ++r) {  // each forwards what it has not yet received
    h.add(r, Step::recv(1 - r, out(1 - r, 1))).add(r, Step::send(1 - r, out(1 - r, 1)));
  }
  EXPECT_THAT(h.error(),
              AllOf(HasSubstr("deadlock: 4 of 4 steps never run"),
                    HasSubstr("Stuck: r0 c0 at step 0, r1 c0 at step 0"),
                    HasSubstr("r0 c0 step 0 (recv       <- r1  out[1+1]) waits for r1 c0 step 1"),
                    HasSubstr("(its message)"), HasSubstr("touching the same elements")));
}

// Each rank receives before it sends, on disjoint elements.
Hand receiveFirstAllGather() {
  Hand h(Collective::kAllGather, 1, 2);
  for (int r = 0; r < 2; ++r) {
    h.add(r, Step::recv(1 - r, out(1 - r, 1)))
        .add(r, Step::send(1 - r, in(0, 1)))
        .add(r, Step::copy(in(0, 1), out(r, 1)));
  }
  return h;
}

TEST(VerifierTest, RejectsReceiveBeforeSendWhenChannelsRunInOrder) {
  EXPECT_THAT(receiveFirstAllGather().error(),
              AllOf(HasSubstr("deadlock when each channel runs its steps strictly in order"),
                    HasSubstr("channels run in order")));
}

TEST(VerifierTest, AcceptsReceiveBeforeSendUnderDataflowProgress) {
  VerifyOptions options;
  options.requireInOrderProgress = false;
  EXPECT_TRUE(receiveFirstAllGather().verify(options).isOk());
}

// In-place AllToAll of two ranks without scratch: the receive overwrites the block being sent.
Hand inPlaceExchangeWithoutScratch() {
  Hand h(Collective::kAllToAll, 1, 2, 0, /*inPlace=*/true);
  for (int r = 0; r < 2; ++r) {
    h.add(r, Step::send(1 - r, in(1 - r, 1))).add(r, Step::recv(1 - r, out(1 - r, 1)));
  }
  return h;
}

TEST(VerifierTest, RejectsScheduleThatReliesOnTransportBuffering) {
  EXPECT_THAT(inPlaceExchangeWithoutScratch().error(),
              AllOf(HasSubstr("deadlock when the transport buffers nothing"),
                    HasSubstr("completes only together with")));
}

TEST(VerifierTest, AcceptsBufferedExchangeWhenBufferingIsAllowed) {
  VerifyOptions options;
  options.requireUnbufferedProgress = false;
  EXPECT_TRUE(inPlaceExchangeWithoutScratch().verify(options).isOk());
}

TEST(VerifierTest, RejectsInPlaceScheduleThatOverwritesDataItStillNeeds) {
  // Pairwise AllToAll in natural step order, in place, without scratch: at step 1 rank r
  // receives block r-1, which it must still send to r-1 at step 2.
  const int n = 3;
  Hand h(Collective::kAllToAll, 1, n, 0, /*inPlace=*/true);
  for (int r = 0; r < n; ++r) {
    for (int k = 1; k < n; ++k) {
      const int to = (r + k) % n, from = (r - k + n) % n;
      h.add(r, Step::send(to, in(to, 1))).add(r, Step::recv(from, out(from, 1)));
    }
  }
  EXPECT_THAT(h.error(), AllOf(HasSubstr("wrong output"),
                               HasSubstr("r0 out[1]: expected in[0] of rank 1, seen in[1]")));
}

TEST(VerifierTest, RejectsSendThatIsNeverReceived) {
  Hand h(Collective::kBroadcast, 4, 2, /*root=*/0);
  h.add(0, Step::send(1, in(0, 4))).add(0, Step::send(1, in(0, 4)));
  h.add(0, Step::copy(in(0, 4), out(0, 4))).add(1, Step::recv(0, out(0, 4)));
  EXPECT_THAT(h.error(), AllOf(HasSubstr("r0 c0 step 1 (send       -> r1  in[0+4]) is never "
                                         "received"),
                               HasSubstr("r0 sends 2 messages to r1 on channel 0 and r1 posts 1")));
}

TEST(VerifierTest, RejectsReceiveThatNoSendFeeds) {
  Hand h(Collective::kBroadcast, 4, 2, /*root=*/0);
  h.add(0, Step::copy(in(0, 4), out(0, 4))).add(1, Step::recv(0, out(0, 4)));
  EXPECT_THAT(h.error(), AllOf(HasSubstr("r1 c0 step 0"), HasSubstr("never gets its message")));
}

TEST(VerifierTest, RejectsMatchedMessagesOfDifferentCounts) {
  Hand h(Collective::kBroadcast, 4, 2, /*root=*/0);
  h.add(0, Step::send(1, in(0, 4))).add(0, Step::copy(in(0, 4), out(0, 4)));
  h.add(1, Step::recv(0, out(0, 3)));
  EXPECT_THAT(h.error(), HasSubstr("sends 4 elements but its receive r1 c0 step 0 (recv       <- "
                                   "r0  out[0+3]) expects 3"));
}

TEST(VerifierTest, RejectsChannelsThatTouchTheSameElements) {
  Hand h(Collective::kBroadcast, 4, 2, /*root=*/0);
  h.add(0, Step::send(1, in(0, 4)), 0).add(0, Step::send(1, in(0, 4)), 1);
  h.add(0, Step::copy(in(0, 4), out(0, 4)), 0);
  h.add(1, Step::recv(0, out(0, 4)), 0).add(1, Step::recv(0, out(0, 4)), 1);
  EXPECT_THAT(h.error(), AllOf(HasSubstr("r1 c1 step 0"), HasSubstr("writes out[0]"),
                               HasSubstr("on another channel")));
}

TEST(VerifierTest, RejectsReadOfAnElementNothingWrote) {
  Hand h(Collective::kBroadcast, 4, 2, /*root=*/0);
  h.scratchCount(0, 4).add(0, Step::send(1, scratch(0, 4))).add(0, Step::copy(in(0, 4), out(0, 4)));
  h.add(1, Step::recv(0, out(0, 4)));
  EXPECT_THAT(h.error(), AllOf(HasSubstr("r0 c0 step 0"), HasSubstr("at scratch[0]"),
                               HasSubstr("sends an element nothing has written")));
}

TEST(VerifierTest, RejectsSelfCopyWithoutFinalize) {
  Hand h(Collective::kAllGather, 4, 1, 0, /*inPlace=*/true);
  h.add(0, Step::copy(in(0, 4), out(0, 4)));
  EXPECT_THAT(h.error(), AllOf(HasSubstr("onto itself (after in-place aliasing) without finalize"),
                               HasSubstr("moves nothing")));
}

TEST(VerifierTest, AcceptsFinalizeOnlySelfCopyForOneRankInPlaceReduction) {
  for (Collective c : {Collective::kAllReduce, Collective::kReduceScatter, Collective::kReduce}) {
    Hand h(c, 4, 1, 0, /*inPlace=*/true);
    h.add(0, Step::copy(in(0, 4), out(0, 4), /*finalize=*/true));
    const Status status = h.verify();
    EXPECT_TRUE(status.isOk()) << status.toString();
  }
}

TEST(VerifierTest, RejectsOneRankInPlaceReductionThatNeverFinalizes) {
  Hand h(Collective::kAllReduce, 4, 1, 0, /*inPlace=*/true);
  EXPECT_THAT(h.error(), HasSubstr("missing finalize"));
}

TEST(VerifierTest, RejectsPartiallyOverlappingOperands) {
  Hand h(Collective::kAllReduce, 4, 1, 0, /*inPlace=*/true);
  h.add(0, Step::copy(in(0, 3), out(1, 3), true));
  EXPECT_THAT(h.error(), HasSubstr("src out[0+3] partially overlaps dst out[1+3] (after in-place "
                                   "aliasing)"));
}

TEST(VerifierTest, RejectsReductionStepInACollectiveThatDoesNotReduce) {
  Hand h(Collective::kBroadcast, 4, 2, /*root=*/0);
  h.add(0, Step::send(1, in(0, 4))).add(1, Step::recvReduce(0, out(0, 4), out(0, 4)));
  EXPECT_THAT(h.error(), HasSubstr("combines values, but broadcast is not a reduction"));
}

TEST(VerifierTest, RejectsFinalizeOnASend) {
  Hand h(Collective::kAllReduce, 4, 2);
  Step step = Step::send(1, in(0, 4));
  step.finalize = true;
  h.add(0, step);
  EXPECT_THAT(h.error(), HasSubstr("a send cannot finalize"));
}

TEST(VerifierTest, RejectsMessageToItsOwnRankOrAnUnknownRank) {
  Hand self(Collective::kAllGather, 1, 2);
  self.add(0, Step::send(0, in(0, 1)));
  EXPECT_THAT(self.error(), HasSubstr("talks to its own rank"));
  Hand unknown(Collective::kAllGather, 1, 2);
  unknown.add(0, Step::send(5, in(0, 1)));
  EXPECT_THAT(unknown.error(), HasSubstr("peer 5 outside [0, 2)"));
}

TEST(VerifierTest, RejectsBarrierThatLetsARankLeaveEarly) {
  // One round of a ring: each rank hears only from its left neighbour.
  Hand h(Collective::kBarrier, 0, 3);
  for (int r = 0; r < 3; ++r) {
    h.add(r, Step::send((r + 1) % 3, scratch(0, 0))).add(r, Step::recv((r + 2) % 3, scratch(0, 0)));
  }
  EXPECT_THAT(h.error(), HasSubstr("barrier: r0 may finish before rank 1 started"));
}

TEST(VerifierTest, RejectsScheduleWithTheWrongNumberOfRanks) {
  Schedule s;
  s.args = {Collective::kAllReduce, 4, 3, 0, -1, false, 1};
  s.ranks.resize(2);
  EXPECT_THAT(verifySchedule(s).message(), HasSubstr("the schedule has 2 ranks, nranks is 3"));
}

TEST(VerifierTest, SendsPointToPointCallsToTheirOwnEntryPoint) {
  Schedule s;
  s.args = {Collective::kSend, 4, 2, 0, 1, false, 1};
  s.ranks.resize(2);
  EXPECT_THAT(verifySchedule(s).message(), HasSubstr("use verifyPointToPoint"));
}

TEST(VerifierTest, RejectsSendThatItsPeerDoesNotAnswer) {
  std::vector<std::optional<PeerCall>> calls(3);
  calls[0] = PeerCall{{Collective::kSend, 4, 3, 0, 2, false, 1}, {}};
  calls[0]->schedule.channels.resize(1);
  calls[0]->schedule.channels[0].steps.push_back(Step::send(2, in(0, 4)));
  EXPECT_THAT(verifyPointToPoint(calls).message(),
              HasSubstr("rank 0 (send peer 2 count 4) is not answered: rank 2 must call recv "
                        "peer 0 count 4"));
}

TEST(VerifierTest, AcceptsHandWrittenPointToPointExchange) {
  std::vector<std::optional<PeerCall>> calls(3);
  calls[2] = PeerCall{{Collective::kSend, 4, 3, 0, 0, false, 1}, {}};
  calls[2]->schedule.channels.resize(1);
  calls[2]->schedule.channels[0].steps.push_back(Step::send(0, in(0, 4)));
  calls[0] = PeerCall{{Collective::kRecv, 4, 3, 0, 2, false, 1}, {}};
  calls[0]->schedule.channels.resize(1);
  calls[0]->schedule.channels[0].steps.push_back(Step::recv(2, out(0, 4)));
  const Status status = verifyPointToPoint(calls);
  EXPECT_TRUE(status.isOk()) << status.toString();
}

}  // namespace
}  // namespace loom::algo
