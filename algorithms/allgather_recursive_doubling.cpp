// AllGather, recursive doubling.
//
// Vocabulary. Block b of the output (b*count, count) is rank b's contribution. The count elements
// are split into one part per channel, and each channel runs an independent instance over its
// part of every block. p is the largest power of two <= n; ranks fold onto p participants
// (builder.h, Fold): new rank v stands for the blocks [firstOf(v), firstOf(v+1)), two for a proxy
// (its extra's and its own) and one otherwise, so an aligned range of new ranks is a contiguous
// range of blocks.
//
// Steps. Every rank copies its input to its own block (out of place). Fold in: extra 2i sends its
// block to its proxy 2i+1. Doubling, mask = 1, 2, .. p/2: new rank v holds the blocks of the
// aligned window of mask new ranks around it; it sends them to v ^ mask and receives that one's
// window. Fold out: the proxy sends its extra every block but the extra's own (one or two
// messages: the range wraps past block n-1). With several channels a part of a block is not
// contiguous with the next block's, so each block is its own message.
//
// Cost per rank (c = count elements): log2 p rounds plus 2 for the fold, one message each way
// per round (one channel); a participant sends and receives (n-1) c in the doubling, except a
// proxy receives (n-2) c there; a proxy sends (n-1) c more and an extra c; c copied out of place.
#include "algorithms/builder.h"
#include "algorithms/builtin.h"

namespace loom::algo {
namespace {

void pushRuns(const std::vector<Part>& runs, StepKind kind, int peer, std::vector<Step>* steps) {
  for (const Part& run : runs) {
    const Region region = regionOf(BufferId::kOutput, run);
    steps->push_back(kind == StepKind::kSend ? Step::send(peer, region) : Step::recv(peer, region));
  }
}

void buildPart(const CollectiveArgs& args, const Fold& fold, const Part& part, int r,
               Channel* channel) {
  const int n = args.nranks;
  const uint64_t c = args.count;
  auto& steps = channel->steps;
  const Region in = inputRegion(part.offset, part.count);
  if (!args.inPlace)
    steps.push_back(Step::copy(in, regionOf(BufferId::kOutput, blockRuns(c, part, r, 1)[0])));
  if (fold.isExtra(r)) {
    steps.push_back(Step::send(r + 1, in));
    pushRuns(blockRunsMod(c, part, n, r + 1, n - 1), StepKind::kRecv, r + 1, &steps);
    return;
  }
  if (fold.isProxy(r)) pushRuns(blockRuns(c, part, r - 1, 1), StepKind::kRecv, r - 1, &steps);
  const int v = fold.newRank(r);
  for (int mask = 1; mask < fold.p; mask *= 2) {
    const int mine = v & ~(mask - 1);
    const int theirs = mine ^ mask;
    const int partner = fold.oldRank(v ^ mask);
    const int first = fold.firstOf(mine);
    const int other = fold.firstOf(theirs);
    pushRuns(blockRuns(c, part, first, fold.firstOf(mine + mask) - first), StepKind::kSend, partner,
             &steps);
    pushRuns(blockRuns(c, part, other, fold.firstOf(theirs + mask) - other), StepKind::kRecv,
             partner, &steps);
  }
  if (fold.isProxy(r)) pushRuns(blockRunsMod(c, part, n, r, n - 1), StepKind::kSend, r - 1, &steps);
}

class AllGatherRecursiveDoubling final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kAllGather; }
  std::string_view name() const override { return "recursive_doubling"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == Collective::kAllGather && argsValid(args);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    LOOM_RETURN_IF_ERROR(checkBuild(*this, args, rank));
    resetSchedule(out, 0);
    if (args.count == 0 || (args.nranks == 1 && args.inPlace)) return Status::ok();
    const Fold fold(args.nranks);
    const int nch = channelsFor(args, args.count);
    resetSchedule(out, nch);
    for (int c = 0; c < nch; ++c) {
      buildPart(args, fold, channelPart(args.count, nch, c), rank, &out->channels[c]);
    }
    return Status::ok();
  }
};

}  // namespace

const Algorithm& builtin::allGatherRecursiveDoubling() {
  static const AllGatherRecursiveDoubling algorithm;
  return algorithm;
}

}  // namespace loom::algo
