// Reduce, binomial tree.
//
// Vocabulary. Ranks are renumbered relative to the root: v = (rank - root) mod n; parent and
// children are those of the binomial broadcast (broadcast_binomial.cpp), with data flowing up.
// A rank receives its children's partial sums in ascending order (the nearest child is a leaf
// and finishes first) and sends its own partial sum to its parent.
//
// Where partial sums live: the root accumulates in its output; a non-root in scratch (count
// elements), because a non-root may have no output buffer. The first combine reads the input and
// writes the accumulator (RecvReduce src = input, dst = accumulator), so no copy is needed; a
// leaf sends its input directly. The root's last combine finalizes. The count elements are split
// into one part per channel, each an independent tree.
#include "algorithms/builder.h"
#include "algorithms/builtin.h"

namespace loom::algo {
namespace {

void buildTreePart(const CollectiveArgs& args, const Part& part, int r, Channel* channel) {
  const int n = args.nranks;
  const int v = modRank(r - args.root, n);
  auto absolute = [&](int relative) { return modRank(relative + args.root, n); };
  const int low = v == 0 ? n : (v & -v);  // children are v + m for m < low
  const Region acc =
      v == 0 ? outputRegion(part.offset, part.count) : scratchRegion(part.offset, part.count);
  auto& steps = channel->steps;
  Region partial = inputRegion(part.offset, part.count);
  for (int m = 1; m < low && v + m < n; m *= 2) {
    const bool last = v == 0 && !(m * 2 < low && v + m * 2 < n);
    steps.push_back(Step::recvReduce(absolute(v + m), partial, acc, /*finalize=*/last));
    partial = acc;
  }
  if (v != 0) steps.push_back(Step::send(absolute(v - low), partial));
}

class ReduceBinomial final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kReduce; }
  std::string_view name() const override { return "binomial"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == Collective::kReduce && argsValid(args);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    return buildReducingChannels(*this, args, rank, out, [&](Part part, Channel* channel) {
      buildTreePart(args, part, rank, channel);
      const int v = modRank(rank - args.root, args.nranks);
      const bool hasChildren = v != 0 && v + 1 < args.nranks && (v & 1) == 0;
      out->scratchCount = hasChildren ? args.count : 0;
    });
  }
};

}  // namespace

const Algorithm& builtin::reduceBinomial() {
  static const ReduceBinomial algorithm;
  return algorithm;
}

}  // namespace loom::algo
