// AllReduce, Rabenseifner: a reduce-scatter by recursive halving, then an all-gather by
// recursive doubling.
//
// Vocabulary. p is the largest power of two <= n; ranks fold onto p participants (builder.h,
// Fold): extra rank 2i hands its input to its proxy 2i+1 and gets the result back. The count
// elements are split into one part per channel, each an independent instance; a part is split
// into p chunks (chunkOf), chunk v belonging to new rank v. A window is a range of chunks.
//
// Steps. Fold in: the proxy combines the extra's input into its output (RecvReduce).
// Reduce-scatter, mask = p/2, .. 1: new rank v's window (all p chunks at first) is halved; v
// keeps the half that holds chunk v and exchanges the other with new rank v ^ mask, sending its
// partial of the other half (from its input until it has combined anything, then from its
// output) and combining the partner's partial of its own half into its output. After the last
// round chunk v is complete, and that combine finalizes it. All-gather, mask = 1, .. p/2: v
// sends the aligned window of mask chunks it holds to v ^ mask and receives the partner's window
// into its output. Fold out: the proxy sends the whole result to its extra.
//
// Every chunk is reduced on exactly one rank and copied to the others, so all ranks get the same
// bits. The halves sent and received in one round are disjoint, so no step waits for its own
// round's send and no scratch is needed.
//
// Cost per rank (c = count elements, p dividing c): 2 log2 p rounds plus 2 for the fold; a
// participant sends 2 (p-1)/p c and combines (p-1)/p c, a proxy sends and combines c more, an
// extra sends c. docs/ALGORITHMS.md has the exact figures for uneven chunks.
#include "algorithms/builder.h"
#include "algorithms/builtin.h"

namespace loom::algo {
namespace {

void buildPart(const Fold& fold, const Part& part, int r, Channel* channel) {
  auto& steps = channel->steps;
  const int p = fold.p;
  if (fold.isExtra(r)) {
    steps.push_back(Step::send(r + 1, inputRegion(part.offset, part.count)));
    steps.push_back(Step::recv(r + 1, outputRegion(part.offset, part.count)));
    return;
  }
  BufferId partial = BufferId::kInput;  // where this rank's partial of its window lives
  if (fold.isProxy(r)) {
    steps.push_back(Step::recvReduce(r - 1, inputRegion(part.offset, part.count),
                                     outputRegion(part.offset, part.count)));
    partial = BufferId::kOutput;
  }
  const int v = fold.newRank(r);
  int lo = 0;
  int hi = p;
  for (int mask = p / 2; mask >= 1; mask /= 2) {  // reduce-scatter
    const int partner = fold.oldRank(v ^ mask);
    const int mid = lo + mask;
    const bool upper = (v & mask) != 0;
    const Part give = upper ? chunkRange(part, p, lo, mid) : chunkRange(part, p, mid, hi);
    const Part keep = upper ? chunkRange(part, p, mid, hi) : chunkRange(part, p, lo, mid);
    if (give.count > 0) steps.push_back(Step::send(partner, regionOf(partial, give)));
    if (keep.count > 0) {
      steps.push_back(Step::recvReduce(partner, regionOf(partial, keep),
                                       regionOf(BufferId::kOutput, keep), /*finalize=*/mask == 1));
    }
    partial = BufferId::kOutput;
    (upper ? lo : hi) = mid;
  }
  for (int mask = 1; mask < p; mask *= 2) {  // all-gather
    const int mine = v & ~(mask - 1);
    const int theirs = mine ^ mask;
    const Part send = chunkRange(part, p, mine, mine + mask);
    const Part recv = chunkRange(part, p, theirs, theirs + mask);
    const int partner = fold.oldRank(v ^ mask);
    if (send.count > 0) steps.push_back(Step::send(partner, regionOf(BufferId::kOutput, send)));
    if (recv.count > 0) steps.push_back(Step::recv(partner, regionOf(BufferId::kOutput, recv)));
  }
  if (fold.isProxy(r)) steps.push_back(Step::send(r - 1, outputRegion(part.offset, part.count)));
}

class AllReduceRabenseifner final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kAllReduce; }
  std::string_view name() const override { return "rabenseifner"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == Collective::kAllReduce && argsValid(args);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    return buildReducingChannels(*this, args, rank, out, [&](Part part, Channel* channel) {
      buildPart(Fold(args.nranks), part, rank, channel);
    });
  }
};

}  // namespace

const Algorithm& builtin::allReduceRabenseifner() {
  static const AllReduceRabenseifner algorithm;
  return algorithm;
}

}  // namespace loom::algo
