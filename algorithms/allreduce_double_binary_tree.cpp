// AllReduce, double binary tree (NCCL's construction, builder.h doubleTreeLinks).
//
// Vocabulary. Two binary trees span the n ranks; a rank that is an inner node of one is a leaf
// of the other, so the two trees together use every rank's links about evenly. Each tree carries
// half of the data: with one channel, the first half of the count elements goes over tree 0 and
// the second over tree 1, both on channel 0 (both reductions first, then both broadcasts, so
// that one tree's reduction never queues behind the other's broadcast on a connection both
// use); with more, the
// elements are split into an even number of channel parts and channel c carries its part over tree
// c % 2 (as NCCL alternates trees over channels).
//
// Steps, per tree and its half: reduce up, then broadcast down. A rank combines its children's
// partial results into its output, first child first (RecvReduce, reading its input the first
// time), and sends the partial to its parent (a leaf sends its input); the root's last combine
// finalizes. Then a rank receives the result from its parent into its output and forwards it to
// its children. The executor slices every step, so a slice moves up (and later down) as soon as
// the one below it has arrived: the trees are pipelined over slices, which is what makes the
// latency 2 depth + slices rather than 2 depth * slices.
//
// Every element is reduced once, at its tree's root, and copied down, so all ranks get the same
// bits.
//
// Cost (c = count elements, h = c/2 per tree, d = depth of a tree = ceil(log2 n)):
// latency 2 d hops per tree; a rank sends, per tree, h up (none at a root) plus h per child
// down, and combines h per child; at most 1.5 c + 0.5 c = 2 c sent per rank in all, c combined.
#include "algorithms/builder.h"
#include "algorithms/builtin.h"

namespace loom::algo {
namespace {

enum class Phase { kUp, kDown };

// One tree's steps on its half: the reduction up (kUp) or the broadcast down (kDown).
void buildTree(int n, int tree, const Part& half, Phase phase, int r, Channel* channel) {
  if (half.count == 0) return;
  auto& steps = channel->steps;
  const TreeLinks links = doubleTreeLinks(n, r, tree);
  const Region out = outputRegion(half.offset, half.count);
  if (phase == Phase::kDown) {
    if (links.parent >= 0) steps.push_back(Step::recv(links.parent, out));
    for (const int child : {links.child0, links.child1}) {
      if (child >= 0) steps.push_back(Step::send(child, out));
    }
    return;
  }
  Region partial = inputRegion(half.offset, half.count);
  for (const int child : {links.child0, links.child1}) {
    if (child < 0) continue;
    const bool last = links.parent < 0 && (child == links.child1 || links.child1 < 0);
    steps.push_back(Step::recvReduce(child, partial, out, last));
    partial = out;
  }
  if (links.parent >= 0) steps.push_back(Step::send(links.parent, partial));
}

class AllReduceDoubleBinaryTree final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kAllReduce; }
  std::string_view name() const override { return "double_binary_tree"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == Collective::kAllReduce && argsValid(args);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    LOOM_RETURN_IF_ERROR(checkBuild(*this, args, rank));
    resetSchedule(out, 0);
    if (args.count == 0) return Status::ok();
    if (args.nranks == 1) {
      buildSingleRankReduction(args.count, out);
      return Status::ok();
    }
    const int nch = channelsFor(args, args.count);
    if (nch == 1) {
      resetSchedule(out, 1);
      const Part all{0, args.count};
      for (const Phase phase : {Phase::kUp, Phase::kDown}) {
        for (int tree = 0; tree < 2; ++tree) {
          buildTree(args.nranks, tree, chunkOf(all, 2, tree), phase, rank, &out->channels[0]);
        }
      }
      return Status::ok();
    }
    const int even = nch - nch % 2;
    resetSchedule(out, even);
    for (int c = 0; c < even; ++c) {
      for (const Phase phase : {Phase::kUp, Phase::kDown}) {
        buildTree(args.nranks, c % 2, channelPart(args.count, even, c), phase, rank,
                  &out->channels[c]);
      }
    }
    return Status::ok();
  }
};

}  // namespace

const Algorithm& builtin::allReduceDoubleBinaryTree() {
  static const AllReduceDoubleBinaryTree algorithm;
  return algorithm;
}

}  // namespace loom::algo
