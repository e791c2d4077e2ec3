// Broadcast, hierarchical: scatter on the root's host, inter-host chain per slice, intra-host
// allgather (vocabulary of hosts, locals and shares: hierarchy.h).
//
// Each channel's part is split into L slices; on host h slice s is owned by local s mod L_h.
//   1. Scatter on the root's host: the root sends each slice to its owner there.
//   2. Inter-host chain per slice, in increasing s: the owners of s on hosts hr, hr+1, ..
//      (hr the root's host) pass it along; the executor pipelines the chain.
//   3. Intra-host allgather, pairwise: in round k = 1 .. L_h-1 local i sends its slices to local
//      i+k and receives those of local i-k; the root receives nothing.
// Bytes: the root sends (L-1)/L N inside its host plus what it owns across; a host's network
// carries N once (each slice once), split over its L ranks.
#include "algorithms/builder.h"
#include "algorithms/builtin.h"
#include "algorithms/hierarchy.h"

namespace loom::algo {
namespace {

struct Phases {
  const HostGroups& g;
  int rank;
  int root;
  int h;  // this rank's host
  int i;  // its local index
  int L;  // ranks on its host
  int S;  // slices
  Part part;
  Channel* channel;

  Part slice(int s) const { return chunkOf(part, S, s); }
  // What this rank sends of slice s: the root its input, the others what they received.
  Region source(int s) const {
    const Part p = slice(s);
    return {rank == root ? BufferId::kInput : BufferId::kOutput, p.offset, p.count};
  }
  Region target(int s) const { return outputRegion(slice(s).offset, slice(s).count); }

  void scatterOnRootHost() {
    const int hr = g.hostOf(root);
    if (h != hr) return;
    for (int s = 0; s < S; ++s) {
      const int owner = g.holder(hr, s);
      if (slice(s).count == 0 || owner == root) continue;
      if (rank == root) channel->steps.push_back(Step::send(owner, source(s)));
      if (rank == owner) channel->steps.push_back(Step::recv(root, target(s)));
    }
  }

  void chainAcrossHosts() {
    const int H = g.nhosts();
    const int hr = g.hostOf(root);
    const int position = (h - hr + H) % H;
    for (int s = 0; s < S; ++s) {
      if (slice(s).count == 0 || g.holder(h, s) != rank) continue;
      if (position > 0)
        channel->steps.push_back(Step::recv(g.holder((h - 1 + H) % H, s), target(s)));
      if (position + 1 < H)
        channel->steps.push_back(Step::send(g.holder((h + 1) % H, s), source(s)));
    }
  }

  void allGatherWithinHost() {
    for (int k = 1; k < L; ++k) {
      const int to = g.rankAt(h, (i + k) % L);
      const int fromLocal = (i - k + L) % L;
      const int from = g.rankAt(h, fromLocal);
      for (int s = i; s < S && to != root; s += L)  // the slices this rank owns
        if (slice(s).count > 0) channel->steps.push_back(Step::send(to, source(s)));
      for (int s = fromLocal; s < S && rank != root; s += L)
        if (slice(s).count > 0) channel->steps.push_back(Step::recv(from, target(s)));
    }
  }
};

class BroadcastHierarchical final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kBroadcast; }
  std::string_view name() const override { return "hierarchical"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == Collective::kBroadcast && argsValid(args) && hostsFit(args);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    const HostGroups g(args);
    return buildMovingChannels(*this, args, rank, out, [&](const Part& part, Channel* channel) {
      const int h = g.hostOf(rank);
      Phases phases{g, rank, args.root, h, g.localOf(rank), g.size(h), g.maxSize(), part, channel};
      if (rank == args.root && !args.inPlace)
        channel->steps.push_back(Step::copy(inputRegion(part.offset, part.count),
                                            outputRegion(part.offset, part.count)));
      phases.scatterOnRootHost();
      phases.chainAcrossHosts();
      phases.allGatherWithinHost();
    });
  }
};

}  // namespace

const Algorithm& builtin::broadcastHierarchical() {
  static const BroadcastHierarchical algorithm;
  return algorithm;
}

}  // namespace loom::algo
