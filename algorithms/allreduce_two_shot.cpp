// AllReduce, two shot: a direct reduce-scatter, then a direct all-gather.
//
// The host-memory counterpart of NCCL's two-shot all-reduce. A part is split into n chunks
// (chunkOf); rank r owns chunk r. Reduce-scatter: rank r sends chunk r+k of its input to r+k and
// receives chunk r of r-k's input into scratch block r-k (k = 1 .. n-1), then combines the n
// copies of chunk r in rank order into its output (direct_common.h). All-gather: rank r sends
// its finished chunk to every peer and receives chunk r-k from r-k into its output. Two rounds
// of latency and 2 (n-1)/n of the vector over each link, like a ring, but every transfer is
// between the owner and the reader directly (no forwarding), so the rounds do not grow with n.
// In place, chunk r of the input is first copied to scratch (the combine overwrites it before
// reading it last); the all-gather's receives overwrite input chunks only after they were sent.
//
// Through the host window (runtime/direct.h), each rank reads chunk r of every staged input and
// then the finished chunks where their owners left them.
#include "algorithms/builder.h"
#include "algorithms/builtin.h"
#include "algorithms/direct_common.h"

namespace loom::algo {
namespace {

void buildTwoShotPart(const Part& part, const CollectiveArgs& args, int r, Channel* channel) {
  const int n = args.nranks;
  auto& steps = channel->steps;
  const Part owned = chunkOf(part, n, r);
  auto block = [&](int q) {
    return scratchRegion(static_cast<uint64_t>(q) * args.count + owned.offset, owned.count);
  };
  Region own = inputRegion(owned.offset, owned.count);
  if (args.inPlace && owned.count > 0) {
    steps.push_back(Step::copy(own, block(r)));
    own = block(r);
  }
  for (int k = 1; k < n; ++k) {  // reduce-scatter
    const Part theirs = chunkOf(part, n, modRank(r + k, n));
    if (theirs.count > 0)
      steps.push_back(Step::send(modRank(r + k, n), regionOf(BufferId::kInput, theirs)));
    const int s = modRank(r - k, n);
    if (owned.count > 0) steps.push_back(Step::recv(s, block(s)));
  }
  const Region result = regionOf(BufferId::kOutput, owned);
  if (owned.count > 0) {
    std::vector<Region> sources;
    for (int q = 0; q < n; ++q)
      sources.push_back(q == r ? own : block(q));
    combineInRankOrder(sources, result, &steps);
  }
  for (int k = 1; k < n; ++k) {  // all-gather
    if (owned.count > 0) steps.push_back(Step::send(modRank(r + k, n), result));
    const int s = modRank(r - k, n);
    const Part theirs = chunkOf(part, n, s);
    if (theirs.count > 0) steps.push_back(Step::recv(s, regionOf(BufferId::kOutput, theirs)));
  }
}

class AllReduceTwoShot final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kAllReduce; }
  std::string_view name() const override { return "two_shot"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == Collective::kAllReduce && argsValid(args) &&
           static_cast<uint64_t>(args.nranks) <= UINT64_MAX / std::max<uint64_t>(args.count, 1);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    LOOM_RETURN_IF_ERROR(buildReducingChannels(
        *this, args, rank, out,
        [&](Part part, Channel* channel) { buildTwoShotPart(part, args, rank, channel); }));
    if (args.nranks > 1 && args.count > 0)
      out->scratchCount = static_cast<uint64_t>(args.nranks) * args.count;
    return Status::ok();
  }
};

}  // namespace

const Algorithm& builtin::allReduceTwoShot() {
  static const AllReduceTwoShot instance;
  return instance;
}

}  // namespace loom::algo
