// AllToAll, one shot. As messages it is pairwise exchange (alltoall_pairwise.cpp), whose steps
// already wait for nothing; the two differ only when every rank is a process of one host: then
// one_shot runs through the host window (runtime/direct.h), where every rank stages its whole
// input once and copies block r of every staged input into its output, with no message or FIFO.
#include "algorithms/builder.h"
#include "algorithms/builtin.h"

namespace loom::algo {
namespace {

class AllToAllOneShot final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kAllToAll; }
  std::string_view name() const override { return "one_shot"; }
  bool supports(const CollectiveArgs& args) const override {
    return builtin::allToAllPairwise().supports(args);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    LOOM_RETURN_IF_ERROR(checkBuild(*this, args, rank));
    return builtin::allToAllPairwise().build(args, rank, out);
  }
};

}  // namespace

const Algorithm& builtin::allToAllOneShot() {
  static const AllToAllOneShot algorithm;
  return algorithm;
}

}  // namespace loom::algo
