// AllReduce, recursive doubling.
//
// Vocabulary. p is the largest power of two <= n; ranks fold onto p participants (builder.h,
// Fold): extra rank 2i hands its input to its proxy 2i+1 and gets the result back. The count
// elements are split into one part per channel, each an independent instance on its channel.
//
// Steps. Fold in: the proxy receives the extra's input into scratch and combines it with its
// own into its output. Doubling, mask = 1, 2, .. p/2: new rank v sends its whole partial result
// (its input in the first round when it has combined nothing yet, its output afterwards) to the
// participant with new rank v ^ mask, receives that one's into scratch and combines the two into
// its output; the last combine finalizes. Fold out: the proxy sends the result to its extra.
//
// Same bits on every rank. Both partners of a round compute the same combination in the same
// order: (the lower new rank's partial) op (the higher's), with a local Reduce whose operands are
// ordered by rank rather than a RecvReduce (which puts the local value first). By induction every
// participant ends with one expression tree, (..((x0 op x1) op (x2 op x3)) ..), whatever the
// operator's behaviour on ties, signed zeros or NaN payloads. The receive lands in scratch (never
// in the partial being sent), so neither partner's receive waits for its own send: the exchange
// needs no transport buffering.
//
// Cost per rank (c = count elements): log2 p rounds of one message each way plus 2 for the fold;
// a participant sends and combines c per round, a proxy c more (and receives c more), an extra
// sends c; count elements of scratch on participants.
#include "algorithms/builder.h"
#include "algorithms/builtin.h"

namespace loom::algo {
namespace {

void buildPart(const Fold& fold, const Part& part, int r, Channel* channel) {
  auto& steps = channel->steps;
  const Region in = inputRegion(part.offset, part.count);
  const Region out = outputRegion(part.offset, part.count);
  const Region incoming = scratchRegion(part.offset, part.count);
  if (fold.isExtra(r)) {
    steps.push_back(Step::send(r + 1, in));
    steps.push_back(Step::recv(r + 1, out));
    return;
  }
  Region partial = in;
  if (fold.isProxy(r)) {  // the extra r-1 is the lower rank
    steps.push_back(Step::recv(r - 1, incoming));
    steps.push_back(Step::reduce(incoming, in, out));
    partial = out;
  }
  const int v = fold.newRank(r);
  for (int mask = 1; mask < fold.p; mask *= 2) {
    const int partner = fold.oldRank(v ^ mask);
    const bool last = mask * 2 == fold.p;
    steps.push_back(Step::send(partner, partial));
    steps.push_back(Step::recv(partner, incoming));
    if ((v & mask) != 0) {
      steps.push_back(Step::reduce(incoming, partial, out, last));
    } else {
      steps.push_back(Step::reduce(partial, incoming, out, last));
    }
    partial = out;
  }
  if (fold.isProxy(r)) steps.push_back(Step::send(r - 1, out));
}

class AllReduceRecursiveDoubling final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kAllReduce; }
  std::string_view name() const override { return "recursive_doubling"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == Collective::kAllReduce && argsValid(args);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    return buildReducingChannels(*this, args, rank, out, [&](Part part, Channel* channel) {
      const Fold fold(args.nranks);
      buildPart(fold, part, rank, channel);
      out->scratchCount = fold.isExtra(rank) ? 0 : args.count;
    });
  }
};

}  // namespace

const Algorithm& builtin::allReduceRecursiveDoubling() {
  static const AllReduceRecursiveDoubling algorithm;
  return algorithm;
}

}  // namespace loom::algo
