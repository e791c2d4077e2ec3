// Gather, linear: every non-root sends its input to the root, which receives block s of its
// output from each rank s in turn and copies its own input into block root (skipped in place,
// where the input is that block). The root's link carries (n-1) count elements. The count
// elements are split into one part per channel.
#include "algorithms/builder.h"
#include "algorithms/builtin.h"

namespace loom::algo {
namespace {

void buildPart(const CollectiveArgs& args, const Part& part, int r, Channel* channel) {
  const int n = args.nranks;
  const Region in = inputRegion(part.offset, part.count);
  auto& steps = channel->steps;
  if (r != args.root) {
    steps.push_back(Step::send(args.root, in));
    return;
  }
  auto block = [&](int s) {
    return outputRegion(static_cast<uint64_t>(s) * args.count + part.offset, part.count);
  };
  for (int k = 1; k < n; ++k) {  // nearest ranks first, in the same order on every root
    const int s = modRank(r + k, n);
    steps.push_back(Step::recv(s, block(s)));
  }
  if (!args.inPlace) steps.push_back(Step::copy(in, block(r)));
}

class GatherLinear final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kGather; }
  std::string_view name() const override { return "linear"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == Collective::kGather && argsValid(args);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    return buildMovingChannels(*this, args, rank, out, [&](const Part& part, Channel* channel) {
      buildPart(args, part, rank, channel);
    });
  }
};

}  // namespace

const Algorithm& builtin::gatherLinear() {
  static const GatherLinear algorithm;
  return algorithm;
}

}  // namespace loom::algo
