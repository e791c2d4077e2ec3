// AllGather, Bruck.
//
// Vocabulary. Block b of the output (b*count, count) is rank b's contribution. The count elements
// are split into one part per channel, and each channel runs an independent instance over its
// part of every block. Block indices are taken mod n.
//
// Steps, rounds k = 0 .. ceil(log2 n)-1 with distance d = 2^k: rank r holds blocks r .. r+d-1;
// it sends the first min(d, n-d) of them to r-d and receives blocks r+d .. r+d+min(d, n-d)-1
// from r+d. After the last round it holds all n. Unlike the textbook version, which gathers into
// a rotated buffer and rotates at the end, blocks land directly at their place in the output;
// a run of blocks that wraps past block n-1 is sent as two messages (so a round is one or two
// messages each way), and with several channels a part of a block is not contiguous with the
// next block's, so each block is its own message. Round 0 sends the input; the own block reaches
// the output by a local copy (skipped in place, where the input is that block).
//
// Cost per rank (c = count elements): ceil(log2 n) rounds, each of 1 or 2 messages each way (one
// channel); (n-1) c sent and received; c copied out of place.
#include "algorithms/builder.h"
#include "algorithms/builtin.h"

namespace loom::algo {
namespace {

void buildPart(const CollectiveArgs& args, const Part& part, int r, Channel* channel) {
  const int n = args.nranks;
  auto& steps = channel->steps;
  const Region in = inputRegion(part.offset, part.count);
  if (!args.inPlace) {
    steps.push_back(
        Step::copy(in, regionOf(BufferId::kOutput, blockRuns(args.count, part, r, 1)[0])));
  }
  for (int d = 1; d < n; d *= 2) {
    const int blocks = d < n - d ? d : n - d;
    const int to = modRank(r - d, n);
    if (d == 1) {
      steps.push_back(Step::send(to, in));
    } else {
      for (const Part& run : blockRunsMod(args.count, part, n, r, blocks)) {
        steps.push_back(Step::send(to, regionOf(BufferId::kOutput, run)));
      }
    }
    const int from = modRank(r + d, n);
    for (const Part& run : blockRunsMod(args.count, part, n, from, blocks)) {
      steps.push_back(Step::recv(from, regionOf(BufferId::kOutput, run)));
    }
  }
}

class AllGatherBruck final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kAllGather; }
  std::string_view name() const override { return "bruck"; }
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

const Algorithm& builtin::allGatherBruck() {
  static const AllGatherBruck algorithm;
  return algorithm;
}

}  // namespace loom::algo
