// Reduce, one shot: every non-root sends its input straight to the root, which receives each
// into scratch block q and combines the n inputs in rank order into its output
// (direct_common.h). One round of latency; the root's link carries n-1 vectors, so it is for
// small vectors. In place, the root first copies its own input to scratch block root (the
// combine writes the output, which is that input, before the last source is read). The count
// elements are split into one part per channel.
//
// Through the host window (runtime/direct.h) every rank stages its input once and the root
// reduces the staged inputs where they lie.
#include "algorithms/builder.h"
#include "algorithms/builtin.h"
#include "algorithms/direct_common.h"

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
  auto block = [&](int q) {
    return scratchRegion(static_cast<uint64_t>(q) * args.count + part.offset, part.count);
  };
  Region own = in;
  if (args.inPlace) {
    steps.push_back(Step::copy(in, block(r)));
    own = block(r);
  }
  for (int k = 1; k < n; ++k) {
    const int s = modRank(r + k, n);
    steps.push_back(Step::recv(s, block(s)));
  }
  combineOwnAndBlocks(own, r, n, block, outputRegion(part.offset, part.count), &steps);
}

class ReduceOneShot final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kReduce; }
  std::string_view name() const override { return "one_shot"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == Collective::kReduce && argsValid(args) &&
           static_cast<uint64_t>(args.nranks) <= UINT64_MAX / std::max<uint64_t>(args.count, 1);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    LOOM_RETURN_IF_ERROR(buildReducingChannels(
        *this, args, rank, out,
        [&](Part part, Channel* channel) { buildPart(args, part, rank, channel); }));
    if (args.nranks > 1 && args.count > 0 && rank == args.root)
      out->scratchCount = static_cast<uint64_t>(args.nranks) * args.count;
    return Status::ok();
  }
};

}  // namespace

const Algorithm& builtin::reduceOneShot() {
  static const ReduceOneShot algorithm;
  return algorithm;
}

}  // namespace loom::algo
