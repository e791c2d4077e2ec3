// TopoView: the communicator's fused picture of where its ranks are (DESIGN.md section 1, the
// "topology" step of init).
//
// At init every rank publishes, through one bootstrap allGather, its place: host identity and
// name, pid, the CPUs it may run on, the NUMA node those lie in, its GPU (none yet: the GPU
// path sets it), and, from the lowest rank of each host only, that host's topology tree
// (topology/discover.h: LOOM_TOPO_FILE or discovery, once per process). Every rank then builds
// the same view: which ranks share a host (HostMap), each host's System graph, each rank's
// node in that graph (its GPU, else the CPU node of its NUMA node), and the path between every
// two ranks: the graph's path on one host, NET between hosts.
//
// A rank whose CPUs span several NUMA nodes has no single node ("unbound"); its path to a
// rank on the same host is SYS when the host has several NUMA nodes, LOC otherwise.
// Discovery problems are logged and leave that host without a graph (paths LOC/SYS as above);
// an unreadable LOOM_TOPO_FILE fails init (the operator asked for that file).
//
// Thread-safety: immutable after fuseTopology; shared by the communicator's threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/config.h"
#include "base/status.h"
#include "bootstrap/bootstrap.h"
#include "topology/host_map.h"
#include "topology/system.h"

namespace loom::runtime {

struct RankPlace {
  std::string hostId;
  std::string hostName;
  int64_t pid = 0;
  std::vector<int> cpus;  // the CPUs it may run on (sched_getaffinity at init)
  int numa = -1;          // the NUMA node holding all of them, or -1 (unbound / unknown)
  int gpu = -1;           // its GPU's index on the host (NVML order), or -1
  int node = -1;          // its node in the host's System: the GPU, else its CPU node; -1
};

class TopoView {
 public:
  TopoView() = default;

  int nranks() const { return static_cast<int>(places_.size()); }
  const topo::HostMap& hosts() const { return hosts_; }
  const RankPlace& place(int rank) const { return places_[static_cast<size_t>(rank)]; }
  // The graph of a host (HostMap numbering), or nullptr when it sent none.
  const topo::System* system(int host) const { return systems_[static_cast<size_t>(host)].get(); }
  // The path between two ranks' places (LOC for a rank and itself).
  const topo::Path& path(int a, int b) const {
    return paths_[static_cast<size_t>(a) * places_.size() + static_cast<size_t>(b)];
  }
  // "rank 2: host node1 (pid 77), NUMA 0, CPUs 0-3".
  std::string describe(int rank) const;

  // Builds the view from every rank's published bytes (index = rank). Exposed for tests.
  static Result<TopoView> fromExchange(const std::vector<std::vector<uint8_t>>& all);

 private:
  void computePaths();

  topo::HostMap hosts_;
  std::vector<RankPlace> places_;
  std::vector<std::shared_ptr<const topo::System>> systems_;
  std::vector<topo::Path> paths_;
};

// This rank's published bytes: its place, plus the host's topology tree when sendTree.
std::vector<uint8_t> encodePlace(const RankPlace& place, const topo::System* system, bool sendTree);

// The place of the calling thread (affinity, NUMA node in `system`), on host `hostId`.
RankPlace localPlace(const Config& config, const topo::System* system);

// Collective: the allGather described above. `hosts` is the communicator's host grouping (the
// peer-info exchange), used to choose which rank sends its host's tree.
Result<std::shared_ptr<const TopoView>> fuseTopology(bootstrap::Bootstrap& bootstrap,
                                                     const Config& config, int rank,
                                                     const topo::HostMap& hosts);

}  // namespace loom::runtime
