// ReduceScatter, recursive halving.
//
// Vocabulary. The input holds n blocks of count elements; block b (b*count, count) is reduced
// over every rank into rank b's output. The count elements are split into one part per channel,
// and each channel runs an independent instance over its part of every block. p is the largest
// power of two <= n; ranks fold onto p participants (builder.h, Fold): new rank v stands for the
// blocks [firstOf(v), firstOf(v+1)), two for a proxy (its extra's and its own) and one
// otherwise, so a window (a range of new ranks) is a contiguous range of blocks.
//
// Steps. Fold in: extra 2i sends its whole input to its proxy 2i+1, which combines it with its
// own into scratch. Halving, mask = p/2, .. 1: new rank v's window (all p at first) is halved; v
// keeps the half that holds itself, sends its partial of the other half (its input until it has
// combined anything, then scratch) to v ^ mask and combines that one's partial of its half into
// scratch. In the last round (mask = 1) the half is v's own blocks, one message per block: the
// combine of block r writes the output, finalized; a proxy's combine of its extra's block
// finalizes it in scratch, and the proxy sends it to the extra (fold out).
//
// Scratch holds partial sums at the offsets of their blocks, relative to the first block of the
// window kept in round 0 (the whole input on a proxy): (window blocks) count elements, none when
// p = 2 and the rank is not a proxy. In place the output is input block r, read before the last
// round writes it.
//
// Cost per rank (c = count elements): log2 p rounds (one message each way per round, two in the
// last round of a proxy's partner) plus 2 for the fold; a participant sends the blocks outside its
// window each round: n - (blocks of its own new rank) blocks in all, i.e. (n-1) c, or (n-2) c
// for a proxy, which also receives n c from its extra and sends c back; an extra sends n c. The
// combines equal the receives.
#include "algorithms/builder.h"
#include "algorithms/builtin.h"

namespace loom::algo {
namespace {

struct Plan {
  const CollectiveArgs& args;
  const Fold& fold;
  Part part;
  int accFirst;  // block at scratch offset 0
  std::vector<Part> runs(int first, int blocks) const {
    return blockRuns(args.count, part, first, blocks);
  }
  // Runs of blocks [first, last) of new ranks [lo, hi).
  std::vector<Part> windowRuns(int lo, int hi) const {
    return runs(fold.firstOf(lo), fold.firstOf(hi) - fold.firstOf(lo));
  }
  Region acc(const Part& run) const {
    return scratchRegion(run.offset - static_cast<uint64_t>(accFirst) * args.count, run.count);
  }
};

// Round-0 window kept by new rank v: [first block, end block).
int keptFirst(const Fold& fold, int v) {
  const int half = fold.p / 2;
  return fold.firstOf(v < half ? 0 : half);
}
int keptBlocks(const Fold& fold, int v) {
  const int half = fold.p / 2;
  return v < half ? fold.firstOf(half) : fold.n - fold.firstOf(half);
}

void buildPart(const Plan& plan, int r, Channel* channel) {
  const Fold& fold = plan.fold;
  const int n = fold.n;
  auto& steps = channel->steps;
  const Region out = outputRegion(plan.part.offset, plan.part.count);
  if (fold.isExtra(r)) {
    for (const Part& run : plan.runs(0, n))
      steps.push_back(Step::send(r + 1, regionOf(BufferId::kInput, run)));
    steps.push_back(Step::recv(r + 1, out));
    return;
  }
  bool combined = false;  // whether partial sums live in scratch yet
  if (fold.isProxy(r)) {
    for (const Part& run : plan.runs(0, n)) {
      steps.push_back(Step::recvReduce(r - 1, regionOf(BufferId::kInput, run), plan.acc(run)));
    }
    combined = true;
  }
  auto partial = [&](const Part& run) {
    return combined ? plan.acc(run) : regionOf(BufferId::kInput, run);
  };
  const int v = fold.newRank(r);
  int lo = 0;
  for (int mask = fold.p / 2; mask >= 1; mask /= 2) {
    const int partner = fold.oldRank(v ^ mask);
    const int mid = lo + mask;
    const bool upper = (v & mask) != 0;
    const int giveLo = upper ? lo : mid;
    const int keepLo = upper ? mid : lo;
    if (mask > 1) {
      for (const Part& run : plan.windowRuns(giveLo, giveLo + mask)) {
        steps.push_back(Step::send(partner, partial(run)));
      }
      for (const Part& run : plan.windowRuns(keepLo, keepLo + mask)) {
        steps.push_back(Step::recvReduce(partner, partial(run), plan.acc(run)));
      }
      combined = true;
      lo = keepLo;
      continue;
    }
    // Last round: one message per block, so that each lands where it belongs.
    for (int b = fold.firstOf(giveLo); b < fold.firstOf(giveLo + 1); ++b) {
      for (const Part& run : plan.runs(b, 1))
        steps.push_back(Step::send(partner, partial(run)));
    }
    for (int b = fold.firstOf(v); b < fold.firstOf(v + 1); ++b) {
      for (const Part& run : plan.runs(b, 1)) {
        const Region dst = b == r ? out : plan.acc(run);
        steps.push_back(Step::recvReduce(partner, partial(run), dst, /*finalize=*/true));
      }
    }
  }
  if (fold.isProxy(r)) {
    for (const Part& run : plan.runs(r - 1, 1))
      steps.push_back(Step::send(r - 1, plan.acc(run)));
  }
}

class ReduceScatterRecursiveHalving final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kReduceScatter; }
  std::string_view name() const override { return "recursive_halving"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == Collective::kReduceScatter && argsValid(args);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    LOOM_RETURN_IF_ERROR(checkBuild(*this, args, rank));
    resetSchedule(out, 0);
    if (args.count == 0) return Status::ok();
    if (args.nranks == 1) {
      buildSingleRankReduction(args.count, out);
      return Status::ok();
    }
    const Fold fold(args.nranks);
    const int v = fold.newRank(rank);
    int accFirst = 0;
    int accBlocks = 0;
    if (fold.isProxy(rank)) {
      accBlocks = args.nranks;
    } else if (v >= 0 && fold.p > 2) {
      accFirst = keptFirst(fold, v);
      accBlocks = keptBlocks(fold, v);
    }
    const int nch = channelsFor(args, args.count);
    resetSchedule(out, nch);
    for (int c = 0; c < nch; ++c) {
      const Plan plan{args, fold, channelPart(args.count, nch, c), accFirst};
      buildPart(plan, rank, &out->channels[c]);
    }
    out->scratchCount = static_cast<uint64_t>(accBlocks) * args.count;
    return Status::ok();
  }
};

}  // namespace

const Algorithm& builtin::reduceScatterRecursiveHalving() {
  static const ReduceScatterRecursiveHalving algorithm;
  return algorithm;
}

}  // namespace loom::algo
