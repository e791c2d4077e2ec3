// Broadcast, chain: root -> root+1 -> ... -> root-1.
//
// Each rank receives the whole region from its predecessor and forwards it to its successor;
// the executor slices the region, so the chain pipelines and every link carries count elements
// once (time ~ count/bandwidth + (n-1) slice latencies: the choice for large messages). The
// count elements are split into one part per channel, each an independent chain. The root sends
// from its input and copies it to its output (skipped in place, where they are one buffer).
#include "algorithms/builder.h"
#include "algorithms/builtin.h"

namespace loom::algo {
namespace {

void buildChainPart(const CollectiveArgs& args, const Part& part, int r, Channel* channel) {
  const int n = args.nranks;
  const int position = modRank(r - args.root, n);
  const int next = modRank(r + 1, n);
  const Region out = outputRegion(part.offset, part.count);
  auto& steps = channel->steps;
  if (position == 0) {
    const Region in = inputRegion(part.offset, part.count);
    if (n > 1) steps.push_back(Step::send(next, in));
    if (!args.inPlace) steps.push_back(Step::copy(in, out));
    return;
  }
  steps.push_back(Step::recv(modRank(r - 1, n), out));
  if (position + 1 < n) steps.push_back(Step::send(next, out));
}

class BroadcastChain final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kBroadcast; }
  std::string_view name() const override { return "chain"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == Collective::kBroadcast && argsValid(args);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    return buildMovingChannels(*this, args, rank, out, [&](const Part& part, Channel* channel) {
      buildChainPart(args, part, rank, channel);
    });
  }
};

}  // namespace

const Algorithm& builtin::broadcastChain() {
  static const BroadcastChain algorithm;
  return algorithm;
}

}  // namespace loom::algo
