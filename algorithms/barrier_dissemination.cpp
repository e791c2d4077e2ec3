// Barrier, dissemination (Hensgen, Finkel and Manber).
//
// Round k = 0 .. ceil(log2 n)-1: rank r sends a zero-count message to r + 2^k and receives one
// from r - 2^k. After round k a rank has heard, directly or transitively, from the 2^(k+1) ranks
// before it, so after the last round from all of them: no rank leaves before every rank has
// entered. Zero-count steps are fences (schedule.h), so round k+1's send waits for round k's
// receive. The messages carry no data; their regions are scratch[0+0].
#include "algorithms/builder.h"
#include "algorithms/builtin.h"

namespace loom::algo {
namespace {

class BarrierDissemination final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kBarrier; }
  std::string_view name() const override { return "dissemination"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == Collective::kBarrier && argsValid(args);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    LOOM_RETURN_IF_ERROR(checkBuild(*this, args, rank));
    const int n = args.nranks;
    resetSchedule(out, n > 1 ? 1 : 0);
    const Region none = scratchRegion(0, 0);
    for (int distance = 1; distance < n; distance *= 2) {
      out->channels[0].steps.push_back(Step::send(modRank(rank + distance, n), none));
      out->channels[0].steps.push_back(Step::recv(modRank(rank - distance, n), none));
    }
    return Status::ok();
  }
};

}  // namespace

const Algorithm& builtin::barrierDissemination() {
  static const BarrierDissemination algorithm;
  return algorithm;
}

}  // namespace loom::algo
