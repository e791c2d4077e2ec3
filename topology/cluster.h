// Cluster: several hosts joined by a network, for planning and simulating past one machine.
//
// The generator builds N DGX-H100-like hosts (synthetic.h) on a rail-optimised fat tree: NIC
// i of every host plugs into a leaf switch of rail i (one leaf per rail per group of
// `hostsPerLeaf` hosts), and the leaves of all rails connect to a spine layer. So GPU i of one
// host reaches GPU i of another through one leaf when both hosts are in one leaf group, and
// through leaf-spine-leaf otherwise; GPUs on different rails always cross the spine.
//
// File format: <cluster version="1" name=...> holding one <fabric> element and one <system>
// per host (each exactly as a host dump), so one file describes the whole job.
//
// Paths between hosts are NET; their bandwidth is the narrowest of the source GPU's path to its
// NIC, the two ports and the fabric, and their latency adds the switch hops.
// Thread-safety: immutable after fromXml.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "topology/system.h"
#include "topology/xml.h"

namespace loom::topo {

inline constexpr double kSwitchHopLatencyUs = 0.5;

// N hosts named <prefix>000, <prefix>001, ... Requires 1 <= servers <= 4096.
Result<XmlNode> makeRailCluster(int servers, int hostsPerLeaf = 32,
                                const std::string& hostPrefix = "node");

// A device of a cluster: host index and node index in that host's System.
struct ClusterDevice {
  int host = 0;
  int node = 0;
};

class Cluster {
 public:
  static Result<Cluster> fromXml(const XmlNode& root);

  int nhosts() const { return static_cast<int>(hosts_.size()); }
  const System& host(int i) const { return *hosts_[static_cast<size_t>(i)]; }
  int hostsPerLeaf() const { return hostsPerLeaf_; }
  // The NIC (node index) a device reaches the network through: its closest, then widest.
  int nicOf(int host, int node) const;
  // The rail (NIC index) of that NIC.
  int railOf(int host, int node) const;
  // Switch hops between two hosts' NICs (0 on one host).
  int switchHops(const ClusterDevice& a, const ClusterDevice& b) const;
  Path path(const ClusterDevice& a, const ClusterDevice& b) const;

 private:
  std::vector<std::shared_ptr<const System>> hosts_;
  int hostsPerLeaf_ = 32;
};

}  // namespace loom::topo
