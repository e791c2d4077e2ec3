// Scatter, linear: the root sends block d of its input to each rank d in turn and copies block
// root into its own output (skipped in place, where the output is that block); every non-root
// receives its block. The root's link carries (n-1) count elements. The count elements are split
// into one part per channel.
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
  auto block = [&](int d) {
    return inputRegion(static_cast<uint64_t>(d) * args.count + part.offset, part.count);
  };
  for (int k = 1; k < n; ++k) {
    const int d = modRank(r + k, n);
    steps.push_back(Step::send(d, block(d)));
  }
  if (!args.inPlace) steps.push_back(Step::copy(block(r), out));
}

class ScatterLinear final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kScatter; }
  std::string_view name() const override { return "linear"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == Collective::kScatter && argsValid(args);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    return buildMovingChannels(*this, args, rank, out, [&](const Part& part, Channel* channel) {
      buildPart(args, part, rank, channel);
    });
  }
};

}  // namespace

const Algorithm& builtin::scatterLinear() {
  static const ScatterLinear algorithm;
  return algorithm;
}

}  // namespace loom::algo
