// AllReduce, hierarchical: intra-host reduce-scatter, inter-host allreduce per slice, intra-host
// allgather (vocabulary of hosts, locals and shares: hierarchy.h).
//
// Each channel's part is split into L slices (L = the most ranks on one host); on host h slice
// s is owned by local s mod L_h.
//   1. Intra-host reduce-scatter, pairwise: in round k = 1 .. L_h-1, local i sends the slices
//      owned by local i+k (its input) and receives from local i-k its input of the slices i
//      owns, combining it into the output. Afterwards each owner holds its slices summed over
//      its host.
//   2. Inter-host allreduce per slice: the owners of slice s on the H hosts (one per host) run a
//      ring allreduce on it (hosts in order); owners take their slices in increasing order. The
//      ring's last reduce-scatter combine finalizes each element (phase 1's last one when H = 1).
//   3. Intra-host allgather, pairwise: in round k, local i sends its finished slices to local
//      i+k and receives those of local i-k.
//
// Bytes per rank: 2 (L-1)/L N inside the host and 2 (H-1)/H N/L across; a host's network
// carries 2 (H-1)/H N (its L slices), against 2 (n-1)/n N for a flat ring whose every step is
// paced by the network. Messages: 2 (L-1) intra-host and 2 (H-1) inter-host per slice owned.
// In place, a slice's input is read (sent or combined) before phase 3 overwrites it.
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
  int H;
  int S;  // slices
  Part part;
  Channel* channel;

  // Slice s is owned by local s mod L: local x owns slices x, x + L, x + 2L, ...
  Part slice(int s) const { return chunkOf(part, S, s); }

  // 1. Slices this rank owns end up summed over its host, in the output; `reduced` says whether
  // the output holds anything yet (false for a rank alone on its host).
  void reduceScatter(bool* reduced) {
    *reduced = L > 1;
    for (int k = 1; k < L; ++k) {
      const int to = (i + k) % L;
      const int from = (i - k + L) % L;
      for (int s = to; s < S; s += L) {  // the slices local `to` owns
        const Part p = slice(s);
        if (p.count > 0)
          channel->steps.push_back(Step::send(g.rankAt(h, to), inputRegion(p.offset, p.count)));
      }
      for (int s = i; s < S; s += L) {
        const Part p = slice(s);
        if (p.count == 0) continue;
        const BufferId src = k == 1 ? BufferId::kInput : BufferId::kOutput;
        channel->steps.push_back(Step::recvReduce(g.rankAt(h, from), {src, p.offset, p.count},
                                                  outputRegion(p.offset, p.count),
                                                  /*finalize=*/H == 1 && k == L - 1));
      }
    }
  }

  // 2. A ring allreduce of slice s over its owners, one per host, in host order.
  void ringAcrossHosts(int s, bool reduced) {
    const Part p = slice(s);
    const int right = g.holder((h + 1) % H, s);
    const int left = g.holder((h - 1 + H) % H, s);
    const BufferId own = reduced ? BufferId::kOutput : BufferId::kInput;
    auto& steps = channel->steps;
    for (int t = 0; t + 1 < H; ++t) {
      const Part out = chunkOf(p, H, modRank(h - t, H));
      if (out.count > 0)
        steps.push_back(
            Step::send(right, {t == 0 ? own : BufferId::kOutput, out.offset, out.count}));
      const Part in = chunkOf(p, H, modRank(h - t - 1, H));
      if (in.count > 0)
        steps.push_back(Step::recvReduce(left, {own, in.offset, in.count},
                                         outputRegion(in.offset, in.count), t == H - 2));
    }
    for (int t = 0; t + 1 < H; ++t) {
      const Part out = chunkOf(p, H, modRank(h + 1 - t, H));
      if (out.count > 0) steps.push_back(Step::send(right, outputRegion(out.offset, out.count)));
      const Part in = chunkOf(p, H, modRank(h - t, H));
      if (in.count > 0) steps.push_back(Step::recv(left, outputRegion(in.offset, in.count)));
    }
  }

  // 3. Every local gets every finished slice of its host.
  void allGather() {
    for (int k = 1; k < L; ++k) {
      const int to = (i + k) % L;
      const int from = (i - k + L) % L;
      for (int s = i; s < S; s += L) {
        const Part p = slice(s);
        if (p.count > 0)
          channel->steps.push_back(Step::send(g.rankAt(h, to), outputRegion(p.offset, p.count)));
      }
      for (int s = from; s < S; s += L) {
        const Part p = slice(s);
        if (p.count > 0)
          channel->steps.push_back(Step::recv(g.rankAt(h, from), outputRegion(p.offset, p.count)));
      }
    }
  }

  void build() {
    bool reduced = false;
    reduceScatter(&reduced);
    if (H > 1) {
      for (int s = i; s < S; s += L)
        if (slice(s).count > 0) ringAcrossHosts(s, reduced);
    }
    allGather();
  }
};

class AllReduceHierarchical final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kAllReduce; }
  std::string_view name() const override { return "hierarchical"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == Collective::kAllReduce && argsValid(args) && hostsFit(args);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    std::optional<HostGroups> g;  // built once the call is checked
    return buildReducingChannels(*this, args, rank, out, [&](Part part, Channel* channel) {
      if (!g) g.emplace(args);
      const int h = g->hostOf(rank);
      Phases phases{*g,          rank,         h,    g->localOf(rank), g->size(h),
                    g->nhosts(), g->maxSize(), part, channel};
      phases.build();
    });
  }
};

}  // namespace

const Algorithm& builtin::allReduceHierarchical() {
  static const AllReduceHierarchical algorithm;
  return algorithm;
}

}  // namespace loom::algo
