// Reduce, hierarchical: intra-host reduce-scatter, inter-host chain reduce per slice towards the
// root's host, gather on the root's host (vocabulary of hosts, locals and shares: hierarchy.h).
//
// Each channel's part is split into L slices; on host h slice s is owned by local s mod L_h.
//   1. Intra-host reduce-scatter, pairwise (as in allreduce_hierarchical.cpp): each owner sums
//      its slices over its host.
//   2. Per slice, in increasing s, a chain across the owners on hosts hr+H-1, .., hr+1, hr (hr
//      the root's host): each passes its partial sum on to the next, which combines it; the
//      owner on the root's host combines last and finalizes (phase 1's last combine when H = 1).
//   3. The owners on the root's host send their finished slices to the root.
// Where sums live: the root's in its output; everyone else's in scratch (count elements),
// because only the root has an output buffer. A rank alone on its host combines straight from
// its input. Bytes per rank: (L-1)/L N inside the host, at most N/L across hosts (plus N/L to
// the root from each of its host's owners).
#include <optional>

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
  int H;
  int S;  // slices
  Part part;
  Channel* channel;
  bool reduced = false;  // phase 1 ran: this rank's slices' sums are in its accumulator

  // Slice s is owned by local s mod L: local x owns slices x, x + L, x + 2L, ...
  Part slice(int s) const { return chunkOf(part, S, s); }
  Region accumulator(int s) const {
    const Part p = slice(s);
    return {rank == root ? BufferId::kOutput : BufferId::kScratch, p.offset, p.count};
  }
  Region current(int s) const {
    return reduced ? accumulator(s) : inputRegion(slice(s).offset, slice(s).count);
  }

  void reduceScatterWithinHost() {
    for (int k = 1; k < L; ++k) {
      const int to = (i + k) % L;
      const int from = (i - k + L) % L;
      for (int s = to; s < S; s += L)  // the slices local `to` owns
        if (slice(s).count > 0)
          channel->steps.push_back(
              Step::send(g.rankAt(h, to), inputRegion(slice(s).offset, slice(s).count)));
      for (int s = i; s < S; s += L) {
        if (slice(s).count == 0) continue;
        const Region src = k == 1 ? inputRegion(slice(s).offset, slice(s).count) : accumulator(s);
        channel->steps.push_back(Step::recvReduce(g.rankAt(h, from), src, accumulator(s),
                                                  /*finalize=*/H == 1 && k == L - 1));
      }
    }
    reduced = L > 1;
  }

  void chainAcrossHosts() {
    const int hr = g.hostOf(root);
    const int position = (h - hr + H) % H;  // 0 on the root's host; the chain runs downwards
    for (int s = 0; s < S; ++s) {
      if (slice(s).count == 0 || g.holder(h, s) != rank) continue;
      if (position + 1 < H) {
        channel->steps.push_back(Step::recvReduce(g.holder((h + 1) % H, s), current(s),
                                                  accumulator(s), /*finalize=*/position == 0));
      }
      if (position > 0) {
        // After its combine (if any), this rank's partial is in its accumulator.
        const Region partial = position + 1 < H ? accumulator(s) : current(s);
        channel->steps.push_back(Step::send(g.holder((h - 1 + H) % H, s), partial));
      }
    }
  }

  void gatherToRoot() {
    if (h != g.hostOf(root)) return;
    for (int s = 0; s < S; ++s) {
      const int owner = g.holder(h, s);
      if (slice(s).count == 0 || owner == root) continue;
      if (rank == owner) channel->steps.push_back(Step::send(root, accumulator(s)));
      if (rank == root) channel->steps.push_back(Step::recv(owner, accumulator(s)));
    }
  }
};

class ReduceHierarchical final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kReduce; }
  std::string_view name() const override { return "hierarchical"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == Collective::kReduce && argsValid(args) && hostsFit(args);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    std::optional<HostGroups> g;  // built once the call is checked
    return buildReducingChannels(*this, args, rank, out, [&](Part part, Channel* channel) {
      if (!g) g.emplace(args);
      const int h = g->hostOf(rank);
      Phases phases{*g,         rank,        args.root,    h,    g->localOf(rank),
                    g->size(h), g->nhosts(), g->maxSize(), part, channel};
      phases.reduceScatterWithinHost();
      phases.chainAcrossHosts();
      phases.gatherToRoot();
      if (rank != args.root) out->scratchCount = args.count;
    });
  }
};

}  // namespace

const Algorithm& builtin::reduceHierarchical() {
  static const ReduceHierarchical algorithm;
  return algorithm;
}

}  // namespace loom::algo
