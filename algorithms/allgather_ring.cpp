// AllGather, ring.
//
// Vocabulary. Each rank contributes count elements; block s of the output (s*count, count) is
// rank s's contribution. The count elements are split into one part per channel, and each
// channel runs an independent ring over its part of every block.
//
// Steps s = 0 .. n-2: rank r sends block r-s to its right neighbour (its own input at s = 0, the
// block it received at s-1 afterwards) and receives block r-s-1 from its left neighbour. Its own
// block reaches its output by a local copy (skipped in place, where the input is that block).
// Bytes moved per rank: (n-1) count.
#include "algorithms/builder.h"
#include "algorithms/builtin.h"

namespace loom::algo {
namespace {

void buildRingPart(const CollectiveArgs& args, const Part& part, int r, Channel* channel) {
  const int n = args.nranks;
  const int right = modRank(r + 1, n);
  const int left = modRank(r - 1, n);
  auto block = [&](int owner) {
    return outputRegion(static_cast<uint64_t>(owner) * args.count + part.offset, part.count);
  };
  auto& steps = channel->steps;
  for (int s = 0; s + 1 < n; ++s) {
    const Region src = s == 0 ? inputRegion(part.offset, part.count) : block(modRank(r - s, n));
    steps.push_back(Step::send(right, src));
    steps.push_back(Step::recv(left, block(modRank(r - s - 1, n))));
  }
  if (!args.inPlace) steps.push_back(Step::copy(inputRegion(part.offset, part.count), block(r)));
}

class AllGatherRing final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kAllGather; }
  std::string_view name() const override { return "ring"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == Collective::kAllGather && argsValid(args);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    return buildMovingChannels(*this, args, rank, out, [&](const Part& part, Channel* channel) {
      buildRingPart(args, part, rank, channel);
    });
  }
};

}  // namespace

const Algorithm& builtin::allGatherRing() {
  static const AllGatherRing algorithm;
  return algorithm;
}

}  // namespace loom::algo
