// Broadcast, double binary tree.
//
// Vocabulary. Ranks are renumbered relative to the root, v = (rank - root) mod n, and the n-1
// non-roots u = v - 1 are spanned by NCCL's two binary trees (builder.h, doubleTreeLinks over
// n-1 ranks): an inner node of one tree is a leaf of the other, so every rank forwards about as
// much as it receives. The root feeds each tree's top with half of the data. With one channel,
// the first half of the count elements goes over tree 0 and the second over tree 1, both on
// channel 0; with more, the elements are split into an even number of channel parts and channel
// c carries its part over tree c % 2.
//
// Steps, per tree and its half: the root sends the half to the tree's top; every other rank
// receives it from its parent (the root, for the top) into its output and forwards it to its
// children. The executor slices every step, so a slice is forwarded as soon as it has arrived:
// the trees are pipelined over slices. The root copies its input to its output (out of place).
//
// Cost (c = count elements, d = depth of a tree over n-1 ranks = ceil(log2(n-1))): latency
// d + 1 hops; the root sends c (half to each top); another rank sends c/2 per child, per tree:
// at most c in all.
#include "algorithms/builder.h"
#include "algorithms/builtin.h"

namespace loom::algo {
namespace {

void buildTree(const CollectiveArgs& args, int tree, const Part& half, int r, Channel* channel) {
  if (half.count == 0) return;
  const int n = args.nranks;
  const int m = n - 1;  // ranks in each tree
  auto absolute = [&](int u) { return modRank(u + 1 + args.root, n); };
  auto& steps = channel->steps;
  const int v = modRank(r - args.root, n);
  if (v == 0) {
    steps.push_back(
        Step::send(absolute(doubleTreeRoot(m, tree)), inputRegion(half.offset, half.count)));
    return;
  }
  const TreeLinks links = doubleTreeLinks(m, v - 1, tree);
  const Region out = outputRegion(half.offset, half.count);
  steps.push_back(Step::recv(links.parent < 0 ? args.root : absolute(links.parent), out));
  for (const int child : {links.child0, links.child1}) {
    if (child >= 0) steps.push_back(Step::send(absolute(child), out));
  }
}

class BroadcastDoubleBinaryTree final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kBroadcast; }
  std::string_view name() const override { return "double_binary_tree"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == Collective::kBroadcast && argsValid(args);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    LOOM_RETURN_IF_ERROR(checkBuild(*this, args, rank));
    resetSchedule(out, 0);
    if (args.count == 0 || (args.nranks == 1 && args.inPlace)) return Status::ok();
    const bool root = rank == args.root;
    const int nch = args.nranks == 1 ? 1 : channelsFor(args, args.count);
    const int used = nch == 1 ? 1 : nch - nch % 2;
    resetSchedule(out, used);
    if (args.nranks > 1 && used == 1) {
      const Part all{0, args.count};
      for (int tree = 0; tree < 2; ++tree) {
        buildTree(args, tree, chunkOf(all, 2, tree), rank, &out->channels[0]);
      }
    } else if (args.nranks > 1) {
      for (int c = 0; c < used; ++c) {
        buildTree(args, c % 2, channelPart(args.count, used, c), rank, &out->channels[c]);
      }
    }
    if (root && !args.inPlace) {
      for (int c = 0; c < used; ++c) {
        const Part part = used == 1 ? Part{0, args.count} : channelPart(args.count, used, c);
        out->channels[c].steps.push_back(Step::copy(inputRegion(part.offset, part.count),
                                                    outputRegion(part.offset, part.count)));
      }
    }
    return Status::ok();
  }
};

}  // namespace

const Algorithm& builtin::broadcastDoubleBinaryTree() {
  static const BroadcastDoubleBinaryTree algorithm;
  return algorithm;
}

}  // namespace loom::algo
