// Send and Recv, direct: a Send is one kSend step of the whole input to the peer, a Recv one
// kRecv step of the whole output from the peer, on channel 0. A zero-count Send/Recv is still
// one (zero-count) message, so that the pair synchronizes as the API promises.
//
// The peer must differ from the rank: a rank's send to itself has no matching receive in its own
// schedule (the runtime does a grouped self send/recv as a local copy).
#include <string>

#include "algorithms/builder.h"
#include "algorithms/builtin.h"

namespace loom::algo {
namespace {

class DirectPointToPoint final : public Algorithm {
 public:
  explicit DirectPointToPoint(Collective collective) : collective_(collective) {}
  Collective collective() const override { return collective_; }
  std::string_view name() const override { return "direct"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == collective_ && argsValid(args);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    LOOM_RETURN_IF_ERROR(checkBuild(*this, args, rank));
    if (args.peer == rank) {
      return invalidArgument(std::string(collectiveName(collective_)) + ":direct: rank " +
                             std::to_string(rank) + " cannot be its own peer");
    }
    resetSchedule(out, 1);
    const Step step = collective_ == Collective::kSend
                          ? Step::send(args.peer, inputRegion(0, args.count))
                          : Step::recv(args.peer, outputRegion(0, args.count));
    out->channels[0].steps.push_back(step);
    return Status::ok();
  }

 private:
  Collective collective_;
};

}  // namespace

const Algorithm& builtin::sendDirect() {
  static const DirectPointToPoint algorithm(Collective::kSend);
  return algorithm;
}

const Algorithm& builtin::recvDirect() {
  static const DirectPointToPoint algorithm(Collective::kRecv);
  return algorithm;
}

}  // namespace loom::algo
