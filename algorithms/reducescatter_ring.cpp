// ReduceScatter, ring.
//
// Vocabulary. The input holds nranks blocks of count elements; block b (b*count, count) is
// reduced over every rank into rank b's output. The count elements are split into one part per
// channel, and each channel runs an independent ring over its part of every block.
//
// Steps s = 0 .. n-2: rank r sends the partial sum of block r-s-1 to its right neighbour (its own
// input at s = 0) and receives block r-s-2 from its left neighbour, combining it with its own
// input. The last step receives block r itself, and that combine writes the output, finalized.
// Partial sums live in two scratch slots used alternately (slot s%2 at step s), so that a step's
// receive does not wait for the previous step's send of the other slot. Scratch: 2 count
// elements when nranks > 2. Bytes moved per rank: (n-1) count.
//
// In place the output is input block r, which rank r reads only in the last step, so the final
// combine is src == dst.
#include "algorithms/builder.h"
#include "algorithms/builtin.h"

namespace loom::algo {
namespace {

void buildRingPart(const CollectiveArgs& args, const Part& part, int r, Channel* channel) {
  const int n = args.nranks;
  const uint64_t c = args.count;
  const int right = modRank(r + 1, n);
  const int left = modRank(r - 1, n);
  auto block = [&](int b) {
    return inputRegion(static_cast<uint64_t>(b) * c + part.offset, part.count);
  };
  auto slot = [&](int s) {
    return scratchRegion(static_cast<uint64_t>(s % 2) * c + part.offset, part.count);
  };
  auto& steps = channel->steps;
  for (int s = 0; s + 1 < n; ++s) {
    const Region src = s == 0 ? block(modRank(r - 1, n)) : slot(s - 1);
    steps.push_back(Step::send(right, src));
    const bool last = s == n - 2;
    const Region dst = last ? outputRegion(part.offset, part.count) : slot(s);
    steps.push_back(Step::recvReduce(left, block(modRank(r - s - 2, n)), dst, /*finalize=*/last));
  }
}

class ReduceScatterRing final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kReduceScatter; }
  std::string_view name() const override { return "ring"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == Collective::kReduceScatter && argsValid(args);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    return buildReducingChannels(*this, args, rank, out, [&](Part part, Channel* channel) {
      buildRingPart(args, part, rank, channel);
      out->scratchCount = args.nranks > 2 ? 2 * args.count : 0;
    });
  }
};

}  // namespace

const Algorithm& builtin::reduceScatterRing() {
  static const ReduceScatterRing algorithm;
  return algorithm;
}

}  // namespace loom::algo
