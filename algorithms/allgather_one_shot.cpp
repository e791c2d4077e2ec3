// AllGather, one shot: every rank sends its input straight to every peer and receives each
// peer's block into its output (steps k = 1 .. n-1: to r+k, from r-k, all posted at once); its
// own block is a local copy, skipped in place. One round of latency; each rank's link carries
// its block n-1 times, so it is for small blocks. The count elements are split into one part per
// channel.
//
// Through the host window (runtime/direct.h) every rank stages its block once and copies the
// others' blocks from where they lie (direct_common.h).
#include "algorithms/builder.h"
#include "algorithms/builtin.h"

namespace loom::algo {
namespace {

void buildPart(const CollectiveArgs& args, const Part& part, int r, Channel* channel) {
  const int n = args.nranks;
  const Region in = inputRegion(part.offset, part.count);
  auto block = [&](int q) {
    return outputRegion(static_cast<uint64_t>(q) * args.count + part.offset, part.count);
  };
  auto& steps = channel->steps;
  for (int k = 1; k < n; ++k) {
    steps.push_back(Step::send(modRank(r + k, n), in));
    const int s = modRank(r - k, n);
    steps.push_back(Step::recv(s, block(s)));
  }
  if (!args.inPlace) steps.push_back(Step::copy(in, block(r)));
}

class AllGatherOneShot final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kAllGather; }
  std::string_view name() const override { return "one_shot"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == Collective::kAllGather && argsValid(args);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    return buildMovingChannels(*this, args, rank, out, [&](const Part& part, Channel* channel) {
      buildPart(args, part, rank, channel);
    });
  }
};

}  // namespace

const Algorithm& builtin::allGatherOneShot() {
  static const AllGatherOneShot algorithm;
  return algorithm;
}

}  // namespace loom::algo
