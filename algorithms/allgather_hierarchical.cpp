// AllGather, hierarchical: inter-host exchange along rails, then intra-host allgather
// (vocabulary of hosts, locals and shares: hierarchy.h).
//
// Rail j (j = 0 .. L-1) has one member on every host: the local holding share j there (local
// j mod L_h); its contributors are the ranks that are local j of their host (hosts with more
// than j ranks). Block b is rank b's contribution; each channel moves its part of every block.
//   1. Inter-host, per rail a member belongs to (increasing j), pairwise over hosts: in round
//      k = 1 .. H-1 the member on host h sends its own block (if it contributes to the rail) to
//      the member on host h+k and receives the block of host h-k's contributor (if any).
//      Afterwards every member holds its rails' blocks from every host.
//   2. Intra-host, pairwise: in round k = 1 .. L_h-1, local i sends every block it holds to
//      local i+k and receives those local i-k holds. The locals of a host hold disjoint sets
//      that together cover all n blocks.
// Bytes per rank: (H-1) blocks across hosts (a host's network carries L (H-1) blocks, the
// minimum) and (L-1) H blocks inside the host. Messages: H-1 inter-host, (L-1) H intra-host.
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

  Region block(int b) const {
    return outputRegion(static_cast<uint64_t>(b) * blockCount + part.offset, part.count);
  }
  // The blocks local `local` of this host holds (heldBlocks, hierarchy.h).
  const std::vector<int>& held(int local) const { return (*heldByLocal)[local]; }

  void acrossHosts() {
    const int H = g.nhosts();
    for (int j = i; j < g.maxSize(); j += L) {  // the rails this rank is a member of
      for (int k = 1; k < H; ++k) {
        const int to = (h + k) % H;
        const int from = (h - k + H) % H;
        if (j == i)
          channel->steps.push_back(
              Step::send(g.holder(to, j), inputRegion(part.offset, part.count)));
        if (j < g.size(from)) {
          const int source = g.rankAt(from, j);
          channel->steps.push_back(Step::recv(g.holder(from, j), block(source)));
        }
      }
    }
  }

  void withinHost() {
    const std::vector<int>& mine = held(i);
    for (int k = 1; k < L; ++k) {
      const int to = (i + k) % L;
      const int from = (i - k + L) % L;
      for (int b : mine)
        channel->steps.push_back(Step::send(g.rankAt(h, to), block(b)));
      for (int b : held(from))
        channel->steps.push_back(Step::recv(g.rankAt(h, from), block(b)));
    }
  }
};

class AllGatherHierarchical final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kAllGather; }
  std::string_view name() const override { return "hierarchical"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == Collective::kAllGather && argsValid(args) && hostsFit(args);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    const HostGroups g(args);
    const std::vector<std::vector<int>> held = argsValid(args) && rank >= 0 && rank < args.nranks
                                                   ? heldBlocks(g, g.hostOf(rank))
                                                   : std::vector<std::vector<int>>{};
    return buildMovingChannels(*this, args, rank, out, [&](const Part& part, Channel* channel) {
      const int h = g.hostOf(rank);
      Phases phases{g, rank, h, g.localOf(rank), g.size(h), &held, args.count, part, channel};
      if (!args.inPlace)
        channel->steps.push_back(
            Step::copy(inputRegion(part.offset, part.count), phases.block(rank)));
      phases.acrossHosts();
      phases.withinHost();
    });
  }
};

}  // namespace

const Algorithm& builtin::allGatherHierarchical() {
  static const AllGatherHierarchical algorithm;
  return algorithm;
}

}  // namespace loom::algo
