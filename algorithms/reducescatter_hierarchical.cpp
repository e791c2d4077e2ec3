// ReduceScatter, hierarchical: intra-host reduce-scatter onto rails, then inter-host exchange
// along rails; the mirror image of allgather_hierarchical.cpp (rails, members, contributors and
// the blocks a local holds are defined there; hosts, locals and shares in hierarchy.h).
//
// Block b of every input is reduced into rank b's output; each channel does its part of every
// block.
//   1. Intra-host, pairwise: in round k = 1 .. L_h-1, local i sends local i+k its input of the
//      blocks i+k holds and combines local i-k's input of the blocks it holds itself: its own
//      block into the output, the others into scratch. Afterwards each local holds its blocks
//      summed over its host.
//   2. Inter-host, per rail a member belongs to (increasing j), pairwise over hosts: in round
//      k = 1 .. H-1 the member on host h sends its host's sum of the block of host h+k's
//      contributor (if any) to that contributor, and (if it contributes) combines host h-k's sum
//      of its own block into its output; the last combine finalizes (phase 1's when H = 1).
// Bytes per rank: (L-1) H blocks inside the host, (H-1) blocks across hosts.
#include <algorithm>

#include <optional>

#include "algorithms/builder.h"
#include "algorithms/builtin.h"
#include "algorithms/hierarchy.h"

namespace loom::algo {
namespace {

struct Phases {
  const HostGroups& g;
  int rank;
  int h;  // this rank's host
  int i;  // its local index
  int L;  // ranks on its host
  const std::vector<std::vector<int>>* heldByLocal;
  uint64_t blockCount;
  Part part;  // of every block
  Channel* channel;
  std::vector<int> mine{};  // the blocks this rank holds (held(i)), in rank order
  bool reduced = false;     // phase 1 ran: the held blocks' sums are in accumulators

  Region input(int b) const {
    return inputRegion(static_cast<uint64_t>(b) * blockCount + part.offset, part.count);
  }
  Region output() const { return outputRegion(part.offset, part.count); }
  // Where this rank sums held block b: the output for its own, scratch slot for the others.
  Region accumulator(int b) const {
    if (b == rank) return output();
    // Slots follow `mine` (rank order) without this rank's own block.
    uint64_t slot =
        static_cast<uint64_t>(std::lower_bound(mine.begin(), mine.end(), b) - mine.begin());
    if (rank < b) --slot;
    return scratchRegion(slot * blockCount + part.offset, part.count);
  }
  Region current(int b) const { return reduced ? accumulator(b) : input(b); }

  // The blocks local `local` of this host holds (heldBlocks, hierarchy.h).
  const std::vector<int>& held(int local) const { return (*heldByLocal)[local]; }

  void withinHost() {
    const int H = g.nhosts();
    for (int k = 1; k < L; ++k) {
      const int to = (i + k) % L;
      const int from = (i - k + L) % L;
      for (int b : held(to))
        channel->steps.push_back(Step::send(g.rankAt(h, to), input(b)));
      for (int b : mine)
        channel->steps.push_back(Step::recvReduce(g.rankAt(h, from),
                                                  k == 1 ? input(b) : accumulator(b),
                                                  accumulator(b), H == 1 && k == L - 1));
    }
    reduced = L > 1;
  }

  void acrossHosts() {
    const int H = g.nhosts();
    for (int j = i; j < g.maxSize(); j += L) {  // the rails this rank is a member of
      for (int k = 1; k < H; ++k) {
        const int to = (h + k) % H;
        const int from = (h - k + H) % H;
        if (j < g.size(to)) {
          const int target = g.rankAt(to, j);
          channel->steps.push_back(Step::send(target, current(target)));
        }
        if (j == i) {
          const Region src = k == 1 ? current(rank) : output();
          channel->steps.push_back(
              Step::recvReduce(g.holder(from, j), src, output(), /*finalize=*/k == H - 1));
        }
      }
    }
  }
};

class ReduceScatterHierarchical final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kReduceScatter; }
  std::string_view name() const override { return "hierarchical"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == Collective::kReduceScatter && argsValid(args) && hostsFit(args);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    std::optional<HostGroups> g;  // built once the call is checked
    std::vector<std::vector<int>> held;
    return buildReducingChannels(*this, args, rank, out, [&](Part part, Channel* channel) {
      if (!g) {
        g.emplace(args);
        held = heldBlocks(*g, g->hostOf(rank));
      }
      const int h = g->hostOf(rank);
      Phases phases{*g, rank, h, g->localOf(rank), g->size(h), &held, args.count, part, channel};
      phases.mine = phases.held(phases.i);
      phases.withinHost();
      phases.acrossHosts();
      if (phases.reduced) out->scratchCount = (phases.mine.size() - 1) * args.count;
    });
  }
};

}  // namespace

const Algorithm& builtin::reduceScatterHierarchical() {
  static const ReduceScatterHierarchical algorithm;
  return algorithm;
}

}  // namespace loom::algo
