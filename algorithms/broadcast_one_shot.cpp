// Broadcast, one shot: the root sends the whole vector straight to every other rank, all sends
// posted at once; the others receive it into their output, and the root copies its input into
// its output (skipped in place). One round of latency; the root's link carries the vector n-1
// times, so it is for small vectors. The count elements are split into one part per channel.
//
// Through the host window (runtime/direct.h) the root stages the vector once and every other
// rank copies it from there (direct_common.h).
#include "algorithms/builder.h"
#include "algorithms/builtin.h"

namespace loom::algo {
namespace {

void buildPart(const CollectiveArgs& args, const Part& part, int r, Channel* channel) {
  const int n = args.nranks;
  const Region out = outputRegion(part.offset, part.count);
  auto& steps = channel->steps;
  if (r != args.root) {
    steps.push_back(Step::recv(args.root, out));
    return;
  }
  const Region in = inputRegion(part.offset, part.count);
  for (int k = 1; k < n; ++k)
    steps.push_back(Step::send(modRank(r + k, n), in));
  if (!args.inPlace) steps.push_back(Step::copy(in, out));
}

class BroadcastOneShot final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kBroadcast; }
  std::string_view name() const override { return "one_shot"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == Collective::kBroadcast && argsValid(args);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    return buildMovingChannels(*this, args, rank, out, [&](const Part& part, Channel* channel) {
      buildPart(args, part, rank, channel);
    });
  }
};

}  // namespace

const Algorithm& builtin::broadcastOneShot() {
  static const BroadcastOneShot algorithm;
  return algorithm;
}

}  // namespace loom::algo
