// Broadcast, binomial tree.
//
// Vocabulary. Ranks are renumbered relative to the root: v = (rank - root) mod n. The parent of
// v > 0 is v - lowbit(v) (lowbit: v's lowest set bit); its children are v + m for each power of
// two m < lowbit(v) with v + m < n (the root, v = 0, has a child for every power of two below
// n). A rank receives the whole region from its parent, then forwards it to its children, the
// largest subtree first. ceil(log2 n) rounds of latency: the choice for small messages. The count
// elements are split into one part per channel, each an independent tree.
#include "algorithms/builder.h"
#include "algorithms/builtin.h"

namespace loom::algo {
namespace {

// Largest power of two strictly below n (0 for n = 1).
int topMask(int n) {
  int m = 1;
  while (m * 2 < n) {
    m *= 2;
  }
  return n > 1 ? m : 0;
}

void buildTreePart(const CollectiveArgs& args, const Part& part, int r, Channel* channel) {
  const int n = args.nranks;
  const int v = modRank(r - args.root, n);
  auto absolute = [&](int relative) { return modRank(relative + args.root, n); };
  const Region out = outputRegion(part.offset, part.count);
  auto& steps = channel->steps;
  Region from = inputRegion(part.offset, part.count);
  int mask = topMask(n);
  if (v != 0) {
    const int low = v & -v;
    steps.push_back(Step::recv(absolute(v - low), out));
    from = out;
    mask = low / 2;
  }
  for (; mask >= 1; mask /= 2) {
    if (v + mask < n) steps.push_back(Step::send(absolute(v + mask), from));
  }
  if (v == 0 && !args.inPlace) steps.push_back(Step::copy(from, out));
}

class BroadcastBinomial final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kBroadcast; }
  std::string_view name() const override { return "binomial"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == Collective::kBroadcast && argsValid(args);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    return buildMovingChannels(*this, args, rank, out, [&](const Part& part, Channel* channel) {
      buildTreePart(args, part, rank, channel);
    });
  }
};

}  // namespace

const Algorithm& builtin::broadcastBinomial() {
  static const BroadcastBinomial algorithm;
  return algorithm;
}

}  // namespace loom::algo
