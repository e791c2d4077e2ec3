// HostMap: which ranks share a host. The first piece of the communicator's topology view,
// fused at init from every rank's host identity (base/host.h). Ranks on one host may use
// shared memory; hierarchical schedules group by host.
#pragma once

#include <string>
#include <vector>

namespace loom::topo {

class HostMap {
 public:
  HostMap() = default;
  // hostIds[r] is rank r's host identity.
  explicit HostMap(const std::vector<std::string>& hostIds);

  int nranks() const { return static_cast<int>(hostOfRank_.size()); }
  int nhosts() const { return static_cast<int>(ranksOfHost_.size()); }
  // Hosts are numbered in order of their lowest rank.
  int hostOf(int rank) const { return hostOfRank_[rank]; }
  const std::vector<int>& ranksOn(int host) const { return ranksOfHost_[host]; }
  // Position of rank among the ranks of its host (0-based).
  int localRank(int rank) const { return localRank_[rank]; }
  bool sameHost(int a, int b) const { return hostOfRank_[a] == hostOfRank_[b]; }

 private:
  std::vector<int> hostOfRank_;
  std::vector<int> localRank_;
  std::vector<std::vector<int>> ranksOfHost_;
};

}  // namespace loom::topo
