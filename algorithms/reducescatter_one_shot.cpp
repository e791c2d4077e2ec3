// ReduceScatter, one shot: every rank sends block d of its input straight to each rank d and
// receives block r of every peer's input into scratch block q (steps k = 1 .. n-1: to r+k, from
// r-k, all posted at once), then combines the n blocks in rank order into its output
// (direct_common.h). One round of latency; each link carries (n-1)/n of the input, like a ring,
// but in one step. In place (the output is input block r), the own block is first copied to
// scratch block r. The count elements of a block are split into one part per channel.
//
// Through the host window (runtime/direct.h) every rank stages its input once and reduces block
// r of the staged inputs where they lie.
#include "algorithms/builder.h"
#include "algorithms/builtin.h"
#include "algorithms/direct_common.h"

namespace loom::algo {
namespace {

void buildPart(const CollectiveArgs& args, const Part& part, int r, Channel* channel) {
  const int n = args.nranks;
  auto in = [&](int b) {
    return inputRegion(static_cast<uint64_t>(b) * args.count + part.offset, part.count);
  };
  auto scratch = [&](int q) {
    return scratchRegion(static_cast<uint64_t>(q) * args.count + part.offset, part.count);
  };
  auto& steps = channel->steps;
  Region own = in(r);
  if (args.inPlace) {
    steps.push_back(Step::copy(in(r), scratch(r)));
    own = scratch(r);
  }
  for (int k = 1; k < n; ++k) {
    const int d = modRank(r + k, n);
    steps.push_back(Step::send(d, in(d)));
    const int s = modRank(r - k, n);
    steps.push_back(Step::recv(s, scratch(s)));
  }
  combineOwnAndBlocks(own, r, n, scratch, outputRegion(part.offset, part.count), &steps);
}

class ReduceScatterOneShot final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kReduceScatter; }
  std::string_view name() const override { return "one_shot"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == Collective::kReduceScatter && argsValid(args) &&
           static_cast<uint64_t>(args.nranks) <= UINT64_MAX / std::max<uint64_t>(args.count, 1);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    LOOM_RETURN_IF_ERROR(buildReducingChannels(
        *this, args, rank, out,
        [&](Part part, Channel* channel) { buildPart(args, part, rank, channel); }));
    if (args.nranks > 1 && args.count > 0)
      out->scratchCount = static_cast<uint64_t>(args.nranks) * args.count;
    return Status::ok();
  }
};

}  // namespace

const Algorithm& builtin::reduceScatterOneShot() {
  static const ReduceScatterOneShot algorithm;
  return algorithm;
}

}  // namespace loom::algo
