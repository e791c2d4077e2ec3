// Helpers shared by the hierarchical algorithms (<collective>_hierarchical.cpp), internal to the
// algorithms layer: the hosts of a call, grouped from CollectiveArgs::hosts.
//
// Vocabulary. Host h holds L_h ranks, its "locals", indexed 0 .. L_h-1 in rank order; L is the
// largest L_h. Work that is split L ways (slices of a vector, rails of blocks) is handed out on
// each host round-robin: index j belongs to local (j mod L_h), so on a host with fewer ranks
// some locals take more than one share. This is what lets one schedule serve any layout:
// uneven hosts, one host (it degenerates to an intra-host algorithm) or one rank per host
// (an inter-host one).
#pragma once

#include <vector>

#include "algorithms/schedule.h"

namespace loom::algo {

class HostGroups {
 public:
  // The hosts of args (one host when args.hosts is empty). Requires hostsFit(args).
  explicit HostGroups(const CollectiveArgs& args);

  int nhosts() const { return static_cast<int>(ranks_.size()); }
  int size(int host) const { return static_cast<int>(ranks_[host].size()); }
  int maxSize() const { return maxSize_; }
  int nranks() const { return static_cast<int>(host_.size()); }
  int hostOf(int rank) const { return host_[rank]; }
  int localOf(int rank) const { return local_[rank]; }
  // The rank of host `host` that holds share j (j mod size(host)).
  int holder(int host, int j) const { return ranks_[host][j % size(host)]; }
  // The rank that is local `local` of `host` (local < size(host)).
  int rankAt(int host, int local) const { return ranks_[host][local]; }

 private:
  std::vector<std::vector<int>> ranks_;
  std::vector<int> host_, local_;
  int maxSize_ = 1;
};

// The blocks (ranks) each local of `host` holds in the rail-based AllGather and ReduceScatter
// (allgather_hierarchical.cpp): for local i, the ranks whose local index on their own host is
// i mod size(host), in rank order. The locals' sets are disjoint and cover every rank.
std::vector<std::vector<int>> heldBlocks(const HostGroups& groups, int host);

// Whether args.hosts is empty or describes exactly args.nranks ranks.
bool hostsFit(const CollectiveArgs& args);

// Degenerate layouts, on which a hierarchical schedule is a flat one under another name:
// one host, or one rank on every host.
bool isFlatLayout(const CollectiveArgs& args);

}  // namespace loom::algo
