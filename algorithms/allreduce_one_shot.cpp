// AllReduce, one shot: every rank gathers every input and reduces the whole vector itself.
//
// The host-memory counterpart of NCCL's one-shot all-reduce kernel. As a schedule: rank r sends
// its input to every peer (steps k = 1 .. n-1 to r+k, receiving r-k's input into scratch block
// r-k), then combines the n inputs in rank order into the output (direct_common.h). One round
// of latency; n-1 times the vector crosses each rank's link, so it is for small vectors. In
// place, the own input is first copied to scratch block r (the combine writes the output, which
// is the input, before the last source is read).
//
// Through the host window (runtime/direct.h), the exchange is a staging copy and a flag: each
// rank reads the others' staged inputs where they lie.
#include "algorithms/builder.h"
#include "algorithms/builtin.h"
#include "algorithms/direct_common.h"

namespace loom::algo {
namespace {

void buildOneShotPart(const Part& part, const CollectiveArgs& args, int r, Channel* channel) {
  const int n = args.nranks;
  auto& steps = channel->steps;
  const Region mine = inputRegion(part.offset, part.count);
  auto block = [&](int q) {
    return scratchRegion(static_cast<uint64_t>(q) * args.count + part.offset, part.count);
  };
  Region own = mine;
  if (args.inPlace) {
    steps.push_back(Step::copy(mine, block(r)));
    own = block(r);
  }
  for (int k = 1; k < n; ++k) {
    steps.push_back(Step::send(modRank(r + k, n), mine));
    const int s = modRank(r - k, n);
    steps.push_back(Step::recv(s, block(s)));
  }
  combineOwnAndBlocks(own, r, n, block, outputRegion(part.offset, part.count), &steps);
}

class AllReduceOneShot final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kAllReduce; }
  std::string_view name() const override { return "one_shot"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == Collective::kAllReduce && argsValid(args) &&
           static_cast<uint64_t>(args.nranks) <= UINT64_MAX / std::max<uint64_t>(args.count, 1);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    LOOM_RETURN_IF_ERROR(buildReducingChannels(
        *this, args, rank, out,
        [&](Part part, Channel* channel) { buildOneShotPart(part, args, rank, channel); }));
    if (args.nranks > 1 && args.count > 0)
      out->scratchCount = static_cast<uint64_t>(args.nranks) * args.count;
    return Status::ok();
  }
};

}  // namespace

const Algorithm& builtin::allReduceOneShot() {
  static const AllReduceOneShot instance;
  return instance;
}

}  // namespace loom::algo
