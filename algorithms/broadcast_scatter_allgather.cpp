// Broadcast, scatter + all-gather (van de Geijn).
//
// Vocabulary. Ranks are renumbered relative to the root, v = (rank - root) mod n. The count
// elements are split into one part per channel, each an independent instance; a part is split
// into n chunks (chunkOf), chunk j belonging to relative rank j. The binomial tree is that of
// broadcast_binomial.cpp: v's subtree is the ranks [v, v + lowbit(v)) below n (all n for the
// root), and holds the chunks of the same indices.
//
// Steps. Scatter: the root sends each child's subtree chunks (one contiguous run) to it, largest
// subtree first; every other rank receives its subtree's chunks from its parent into its output
// and passes each child its share the same way. All-gather, a ring cut at the root: at step s =
// 0 .. n-2, v sends chunk v-s to v+1 and receives chunk v-s-1 from v-1, except that nobody sends
// to the root (it holds everything) and a chunk is not sent to a rank whose subtree holds it (it
// got it in the scatter). The root sends from its input and copies it to its output (out of
// place).
//
// Cost (c = count elements): latency ceil(log2 n) + n - 1 steps; the root sends 2 (n-1)/n c;
// rank v (0 < v < n-1) sends (n - size(v+1))/n c in the ring plus its children's subtrees in the
// scatter, (size(v) - 1)/n c; rank n-1 sends nothing in the ring. Roughly 2 c per rank at most,
// against ceil(log2 n) c for the binomial tree: the choice for large messages on few links.
#include "algorithms/builder.h"
#include "algorithms/builtin.h"

namespace loom::algo {
namespace {

struct Layout {
  int n;
  Part part;
  // End of v's subtree (exclusive): v + lowbit(v), at most n; n for the root.
  int end(int v) const {
    if (v == 0) return n;
    const int low = v & -v;
    return v + low < n ? v + low : n;
  }
  bool holds(int v, int chunk) const { return chunk >= v && chunk < end(v); }
  Part subtree(int v) const { return chunkRange(part, n, v, end(v)); }
  Part chunk(int j) const { return chunkOf(part, n, j); }
};

void buildPart(const CollectiveArgs& args, const Part& part, int r, Channel* channel) {
  const int n = args.nranks;
  const Layout layout{n, part};
  const int v = modRank(r - args.root, n);
  auto absolute = [&](int relative) { return modRank(relative + args.root, n); };
  auto& steps = channel->steps;
  const BufferId from = v == 0 ? BufferId::kInput : BufferId::kOutput;
  // Scatter: children v + mask for mask below lowbit(v) (below n for the root), largest first.
  int mask = 1;
  while (mask * 2 < n) {
    mask *= 2;
  }
  if (v != 0) {
    const int low = v & -v;
    const Part mine = layout.subtree(v);
    if (mine.count > 0) {
      steps.push_back(Step::recv(absolute(v - low), regionOf(BufferId::kOutput, mine)));
    }
    mask = low / 2;
  }
  for (; mask >= 1; mask /= 2) {
    if (v + mask >= n) continue;
    const Part share = layout.subtree(v + mask);
    if (share.count > 0) steps.push_back(Step::send(absolute(v + mask), regionOf(from, share)));
  }
  // All-gather: a ring cut before the root, skipping chunks the receiver already holds.
  const int right = v + 1;  // relative; n is the root
  for (int s = 0; s + 1 < n; ++s) {
    const int out = modRank(v - s, n);
    const Part sent = layout.chunk(out);
    if (right < n && !layout.holds(right, out) && sent.count > 0) {
      steps.push_back(Step::send(absolute(right), regionOf(from, sent)));
    }
    const int in = modRank(v - s - 1, n);
    const Part got = layout.chunk(in);
    if (v != 0 && !layout.holds(v, in) && got.count > 0) {
      steps.push_back(Step::recv(absolute(v - 1), regionOf(BufferId::kOutput, got)));
    }
  }
  if (v == 0 && !args.inPlace) {
    steps.push_back(
        Step::copy(inputRegion(part.offset, part.count), outputRegion(part.offset, part.count)));
  }
}

class BroadcastScatterAllGather final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kBroadcast; }
  std::string_view name() const override { return "scatter_allgather"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == Collective::kBroadcast && argsValid(args);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    return buildMovingChannels(*this, args, rank, out, [&](const Part& part, Channel* channel) {
      buildPart(args, part, rank, channel);
    });
  }
};

}  // namespace

const Algorithm& builtin::broadcastScatterAllGather() {
  static const BroadcastScatterAllGather algorithm;
  return algorithm;
}

}  // namespace loom::algo
