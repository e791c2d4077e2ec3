// System: one host's topology as a graph, with the path between every two nodes.
//
// Vocabulary (NCCL's src/graph, so operators recognise it):
//   nodes  CPU (one per NUMA node), PCI (a PCIe switch: its upstream bridge stands for the
//          whole switch), GPU, NIC (a PCI function carrying network ports), NVS (the NVSwitch
//          fabric of the host, one node however many switch chips), NET (one network port).
//   links  LOC, NVL (bw = NVLink count x per-link bw of the GPU generation), PCI (bw from the
//          PCIe generation and width), SYS (between NUMA nodes: UPI/QPI/Infinity Fabric), NET
//          (a port's line rate).
//   paths  LOC  the same device
//          NVL  NVLink, direct or through NVSwitch       (nvidia-smi: NV#, # = bonded links)
//          NVB  NVLink through an intermediate GPU
//          PIX  at most one PCIe switch
//          PXB  several PCIe switches, not through the host bridge
//          PHB  through a PCIe host bridge (the CPU)
//          SYS  across the SMP interconnect between NUMA nodes
//          NET  through the network (between hosts; see fuse.h and cluster.h)
//          DIS  disconnected
//   A path is the one with the fewest hops, and among those the widest (NCCL's rule); its
//   class is the worst hop class, its bandwidth the narrowest link (the bottleneck), its
//   latency the sum of the links' latencies. Paths never pass through a NIC or NET node, and
//   through a GPU only NVLink to NVLink (that is NVB).
//
// Built from the XmlNode tree (xml.h), which it keeps: the tree is what is dumped, shipped and
// printed; the graph is what is asked. Immutable after fromXml; safe to share between threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "topology/xml.h"

namespace loom::topo {

enum class NodeType : uint8_t { kCpu, kPci, kGpu, kNic, kNvSwitch, kNet };
inline constexpr int kNumNodeTypes = 6;
enum class LinkType : uint8_t { kLoc, kNvl, kPci, kSys, kNet };
// Ordered from closest to farthest: comparisons (a < b: a is closer) are meaningful.
enum class PathType : uint8_t { kLoc, kNvl, kNvb, kPix, kPxb, kPhb, kSys, kNet, kDis };

const char* nodeTypeName(NodeType t);  // "CPU", "PCI", "GPU", "NIC", "NVS", "NET"
const char* linkTypeName(LinkType t);  // "LOC", "NVL", "PCI", "SYS", "NET"
const char* pathTypeName(PathType t);  // "LOC", "NVL", "NVB", "PIX", ... "DIS"
std::optional<PathType> parsePathType(std::string_view name);

// Model constants, in GB/s and microseconds. Bandwidths follow NCCL's tables (topo.h); the
// latencies are order-of-magnitude per-hop estimates for the cost model, to be replaced by
// calibration (loom-perf) where it matters.
inline constexpr double kLocBandwidthGBs = 5000.0;
inline constexpr double kDefaultNetBandwidthGBs = 1.25;  // a port with unknown speed: 10 Gb/s
inline constexpr double kPciHopLatencyUs = 0.25;
inline constexpr double kNvlHopLatencyUs = 0.15;
inline constexpr double kSysHopLatencyUs = 0.3;
inline constexpr double kDefaultNetLatencyUs = 2.0;

// Per-link NVLink bandwidth for a GPU with compute capability sm (e.g. 90 -> 20.6 GB/s).
double nvlinkBandwidthGBs(int sm);
// PCIe bandwidth of a link from its sysfs link_speed text ("16.0 GT/s PCIe") and width.
double pciBandwidthGBs(std::string_view linkSpeed, int width);

struct Link {
  int peer = -1;
  LinkType type = LinkType::kLoc;
  double bandwidthGBs = 0;
  double latencyUs = 0;
  int nvlinks = 0;  // NVL links: bonded NVLink count
};

struct Node {
  NodeType type = NodeType::kCpu;
  std::string id;         // CPU "numa<N>", PCI/GPU/NIC bus id, NVS "nvswitch", NET port name
  int index = 0;          // among nodes of its type (GPU: NVML order; CPU: NUMA order)
  int numa = -1;          // NUMA node id (os index) of the CPU it hangs under
  std::string label;      // "GPU0", "NIC1", "NUMA0", "NVS", the NET port name
  std::string model;      // GPU or CPU model, NIC's first port name
  std::vector<int> cpus;  // CPU nodes: the NUMA node's PUs
  std::vector<Link> links;
};

struct Path {
  PathType type = PathType::kDis;
  double bandwidthGBs = 0;
  double latencyUs = 0;
  int hops = 0;
  int nvlinks = 0;  // NVL/NVB paths: the narrowest bonded NVLink count along the path
};

class System {
 public:
  System() = default;
  // InvalidArgument naming the element when the tree is not a loom/NCCL topology.
  static Result<System> fromXml(XmlNode root);

  const XmlNode& xml() const { return xml_; }
  std::string hostName() const { return xml_.attrOr("name", "?"); }
  const std::vector<Node>& nodes() const { return nodes_; }
  const Node& node(int i) const { return nodes_[static_cast<size_t>(i)]; }
  // Node indices of one type, ordered by Node::index.
  const std::vector<int>& nodesOf(NodeType t) const { return byType_[static_cast<int>(t)]; }
  int count(NodeType t) const { return static_cast<int>(nodesOf(t).size()); }
  // The CPU node of a NUMA id, or -1.
  int cpuOfNuma(int numaId) const;
  // The path from node a to node b (indices into nodes()).
  const Path& path(int a, int b) const {
    return paths_[static_cast<size_t>(a) * nodes_.size() + b];
  }

 private:
  friend class SystemBuilder;
  XmlNode xml_;
  std::vector<Node> nodes_;
  std::vector<std::vector<int>> byType_ = std::vector<std::vector<int>>(kNumNodeTypes);
  std::vector<Path> paths_;
};

// Fills every path of the graph (NCCL's breadth-first rule above). Exposed for tests that
// build graphs by hand. O(nodes x links).
std::vector<Path> computePaths(const std::vector<Node>& nodes);

// "NV18" for an NVL path of 18 links, "NVB", "PIX", ..., "X" for LOC (nvidia-smi's cells).
std::string matrixCell(const Path& p);

}  // namespace loom::topo
