// AllReduce, ring: a reduce-scatter ring followed by an all-gather ring.
//
// Vocabulary. The count elements are split into one part per channel; each part is an
// independent ring on its channel. A part is split into nranks chunks (chunkOf). Rank r sends to
// its right neighbour r+1 and receives from its left neighbour r-1.
//
// Reduce-scatter, steps s = 0 .. n-2: rank r sends chunk r-s (its own input at s = 0, the
// partial sum it received at s-1 afterwards) and receives chunk r-s-1, combining it with its own
// input into the output (RecvReduce src = input, dst = output). After n-1 steps rank r holds
// chunk r+1 reduced over every rank; that last combine finalizes it.
// All-gather, steps s = 0 .. n-2: rank r sends chunk r+1-s (its finished chunk at s = 0, the one
// it received at s-1 afterwards) and receives chunk r-s into the output.
//
// Bytes moved per rank: 2 (n-1)/n count, the bandwidth optimum. Chunks of zero elements (count
// below nranks) are skipped on both sides. In place (input == output) every chunk of the input is
// read by the reduce-scatter before the all-gather overwrites it, so no scratch is needed.
#include "algorithms/builder.h"
#include "algorithms/builtin.h"

namespace loom::algo {
namespace {

void buildRingPart(const Part& part, int n, int r, Channel* channel) {
  const int right = modRank(r + 1, n);
  const int left = modRank(r - 1, n);
  auto& steps = channel->steps;
  for (int s = 0; s + 1 < n; ++s) {  // reduce-scatter
    const Part out = chunkOf(part, n, modRank(r - s, n));
    if (out.count > 0) {
      const BufferId from = s == 0 ? BufferId::kInput : BufferId::kOutput;
      steps.push_back(Step::send(right, {from, out.offset, out.count}));
    }
    const Part in = chunkOf(part, n, modRank(r - s - 1, n));
    if (in.count > 0) {
      steps.push_back(Step::recvReduce(left, inputRegion(in.offset, in.count),
                                       outputRegion(in.offset, in.count),
                                       /*finalize=*/s == n - 2));
    }
  }
  for (int s = 0; s + 1 < n; ++s) {  // all-gather
    const Part out = chunkOf(part, n, modRank(r + 1 - s, n));
    if (out.count > 0) steps.push_back(Step::send(right, outputRegion(out.offset, out.count)));
    const Part in = chunkOf(part, n, modRank(r - s, n));
    if (in.count > 0) steps.push_back(Step::recv(left, outputRegion(in.offset, in.count)));
  }
}

class AllReduceRing final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kAllReduce; }
  std::string_view name() const override { return "ring"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == Collective::kAllReduce && argsValid(args);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    return buildReducingChannels(*this, args, rank, out, [&](Part part, Channel* channel) {
      buildRingPart(part, args.nranks, rank, channel);
    });
  }
};

}  // namespace

const Algorithm& builtin::allReduceRing() {
  static const AllReduceRing algorithm;
  return algorithm;
}

}  // namespace loom::algo
