// Simulator networks built from topology hosts and clusters (simulate.h, makeClusterNetwork).
#include <algorithm>
#include <cstdio>

#include "algorithms/simulate.h"

namespace loom::algo {
namespace {

using topo::Cluster;
using topo::ClusterDevice;
using topo::LinkType;
using topo::NodeType;
using topo::System;

class TopologyNetwork final : public SimNetwork {
 public:
  TopologyNetwork(std::vector<const System*> hosts, const Cluster* cluster)
      : hosts_(std::move(hosts)), cluster_(cluster) {}

  Status init(int nranks) {
    for (int h = 0; h < static_cast<int>(hosts_.size()); ++h) {
      for (int gpu : host(h).nodesOf(NodeType::kGpu)) {
        if (static_cast<int>(ranks_.size()) == nranks) break;
        ranks_.push_back({h, gpu});
      }
    }
    if (nranks < 1 || static_cast<int>(ranks_.size()) < nranks) {
      return invalidArgument("the topology has " + std::to_string(ranks_.size()) +
                             " GPUs, so it cannot hold " + std::to_string(nranks) +
                             " ranks (one rank per GPU)");
    }
    addHostLinks();
    if (cluster_ != nullptr) addFabricLinks();
    computeBase_ = static_cast<int>(links_.size());
    for (int r = 0; r < nranks; ++r)
      links_.push_back({rankName(r) + " compute", kGpuReduceGbps});
    return Status::ok();
  }

  int nranks() const override { return static_cast<int>(ranks_.size()); }
  const std::vector<SimLink>& links() const override { return links_; }
  int computeLink(int rank) const override { return computeBase_ + rank; }

  std::string rankName(int rank) const override {
    const ClusterDevice& d = ranks_[static_cast<size_t>(rank)];
    return host(d.host).hostName() + " " + host(d.host).node(d.node).label;
  }

  Status route(int src, int dst, SimRoute* out) const override {
    if (src < 0 || dst < 0 || src >= nranks() || dst >= nranks() || src == dst) {
      return invalidArgument("no route between ranks " + std::to_string(src) + " and " +
                             std::to_string(dst) + " of " + std::to_string(nranks()));
    }
    const ClusterDevice& a = ranks_[static_cast<size_t>(src)];
    const ClusterDevice& b = ranks_[static_cast<size_t>(dst)];
    out->links.clear();
    if (a.host == b.host) {
      out->latencyUs = host(a.host).path(a.node, b.node).latencyUs;
      return hostRoute(a.host, a.node, b.node, &out->links);
    }
    const int na = cluster_->nicOf(a.host, a.node), nb = cluster_->nicOf(b.host, b.node);
    if (na < 0 || nb < 0)
      return invalidArgument("no NIC between " + rankName(src) + " and " + rankName(dst));
    out->latencyUs = cluster_->path(a, b).latencyUs;
    LOOM_RETURN_IF_ERROR(hostRoute(a.host, a.node, na, &out->links));
    const int portOut = netLink(a.host, na, true), portIn = netLink(b.host, nb, false);
    if (portOut < 0 || portIn < 0)
      return invalidArgument("a NIC without a port on the route " + rankName(src) + " -> " +
                             rankName(dst));
    out->links.push_back(portOut);
    if (cluster_->switchHops(a, b) > 1) {
      out->links.push_back(fabricLink(cluster_->railOf(a.host, a.node), a.host, true));
      out->links.push_back(fabricLink(cluster_->railOf(b.host, b.node), b.host, false));
    }
    out->links.push_back(portIn);
    return hostRoute(b.host, nb, b.node, &out->links);
  }

 private:
  const System& host(int h) const { return *hosts_[static_cast<size_t>(h)]; }

  void addHostLinks() {
    linkStart_.resize(hosts_.size());
    for (int h = 0; h < static_cast<int>(hosts_.size()); ++h) {
      const System& s = host(h);
      auto& start = linkStart_[static_cast<size_t>(h)];
      start.resize(s.nodes().size() + 1);
      for (int i = 0; i < static_cast<int>(s.nodes().size()); ++i) {
        start[static_cast<size_t>(i)] = static_cast<int>(links_.size());
        for (const topo::Link& l : s.node(i).links) {
          links_.push_back({s.hostName() + " " + label(s, i) + "->" + label(s, l.peer) + " " +
                                topo::linkTypeName(l.type),
                            l.bandwidthGBs});
        }
      }
      start.back() = static_cast<int>(links_.size());
    }
  }

  static std::string label(const System& s, int node) {
    const topo::Node& n = s.node(node);
    return n.label.empty() ? n.id : n.label;
  }

  // Per rail and leaf group, the leaf's uplinks and downlinks: as many ports as hosts per leaf.
  void addFabricLinks() {
    int rails = 0;
    double portGBs = topo::kDefaultNetBandwidthGBs;
    for (int h = 0; h < static_cast<int>(hosts_.size()); ++h) {
      rails = std::max(rails, host(h).count(NodeType::kNic));
      for (int nic : host(h).nodesOf(NodeType::kNic))
        for (const topo::Link& l : host(h).node(nic).links)
          if (l.type == LinkType::kNet) portGBs = std::max(portGBs, l.bandwidthGBs);
    }
    const int perLeaf = cluster_->hostsPerLeaf();
    groups_ = (static_cast<int>(hosts_.size()) + perLeaf - 1) / perLeaf;
    fabricBase_ = static_cast<int>(links_.size());
    for (int rail = 0; rail < rails; ++rail) {
      for (int g = 0; g < groups_; ++g) {
        char name[64];
        std::snprintf(name, sizeof name, "rail%d leaf%d", rail, g);
        links_.push_back({std::string(name) + " up", portGBs * perLeaf});
        links_.push_back({std::string(name) + " down", portGBs * perLeaf});
      }
    }
  }

  int fabricLink(int rail, int hostIndex, bool up) const {
    const int g = hostIndex / cluster_->hostsPerLeaf();
    return fabricBase_ + 2 * (std::max(0, rail) * groups_ + g) + (up ? 0 : 1);
  }

  // The NIC's port: NIC -> NET (out) or NET -> NIC (in).
  int netLink(int h, int nic, bool out) const {
    const System& s = host(h);
    const auto& links = s.node(nic).links;
    for (int k = 0; k < static_cast<int>(links.size()); ++k) {
      if (links[static_cast<size_t>(k)].type != LinkType::kNet) continue;
      if (out) return linkId(h, nic, k);
      const int net = links[static_cast<size_t>(k)].peer;
      const auto& back = s.node(net).links;
      for (int j = 0; j < static_cast<int>(back.size()); ++j)
        if (back[static_cast<size_t>(j)].peer == nic) return linkId(h, net, j);
    }
    return -1;
  }

  int linkId(int h, int node, int k) const {
    return linkStart_[static_cast<size_t>(h)][static_cast<size_t>(node)] + k;
  }

  // Fewest hops, then widest bottleneck (topology's rule); never through a NIC or port, and
  // through a GPU only from NVLink to NVLink.
  Status hostRoute(int h, int from, int to, std::vector<int>* out) const {
    if (from == to) return Status::ok();
    const System& s = host(h);
    const size_t n = s.nodes().size();
    struct Best {
      int hops = -1;
      double bw = 0;
      int prev = -1, link = -1;
      bool nvl = false;
    };
    std::vector<Best> best(n);
    best[static_cast<size_t>(from)] = {0, 1e18, -1, -1, false};
    std::vector<int> frontier{from}, next;
    while (!frontier.empty() && best[static_cast<size_t>(to)].hops < 0) {
      next.clear();
      for (int at : frontier) {
        const topo::Node& node = s.node(at);
        const Best here = best[static_cast<size_t>(at)];
        for (int k = 0; k < static_cast<int>(node.links.size()); ++k) {
          const topo::Link& l = node.links[static_cast<size_t>(k)];
          if (at != from) {
            if (node.type == NodeType::kNic || node.type == NodeType::kNet) continue;
            if (node.type == NodeType::kGpu && !(here.nvl && l.type == LinkType::kNvl)) continue;
          }
          Best& there = best[static_cast<size_t>(l.peer)];
          const double bw = std::min(here.bw, l.bandwidthGBs);
          if (there.hops >= 0 && (there.hops <= here.hops || there.bw >= bw)) continue;
          if (there.hops < 0) next.push_back(l.peer);
          there = {here.hops + 1, bw, at, k, l.type == LinkType::kNvl};
        }
      }
      frontier.swap(next);
    }
    if (best[static_cast<size_t>(to)].hops < 0) {
      return invalidArgument("no path from " + label(s, from) + " to " + label(s, to) + " on " +
                             s.hostName());
    }
    const size_t first = out->size();
    for (int at = to; at != from; at = best[static_cast<size_t>(at)].prev)
      out->push_back(
          linkId(h, best[static_cast<size_t>(at)].prev, best[static_cast<size_t>(at)].link));
    std::reverse(out->begin() + static_cast<std::ptrdiff_t>(first), out->end());
    return Status::ok();
  }

  std::vector<const System*> hosts_;
  const Cluster* cluster_;
  std::vector<ClusterDevice> ranks_;
  std::vector<SimLink> links_;
  std::vector<std::vector<int>> linkStart_;
  int groups_ = 0;
  int fabricBase_ = 0;
  int computeBase_ = 0;
};

}  // namespace

Result<std::unique_ptr<SimNetwork>> makeHostNetwork(const topo::System& host, int nranks) {
  auto net = std::make_unique<TopologyNetwork>(std::vector<const System*>{&host}, nullptr);
  LOOM_RETURN_IF_ERROR(net->init(nranks));
  return std::unique_ptr<SimNetwork>(std::move(net));
}

Result<std::unique_ptr<SimNetwork>> makeClusterNetwork(const topo::Cluster& cluster, int nranks) {
  std::vector<const System*> hosts;
  for (int h = 0; h < cluster.nhosts(); ++h)
    hosts.push_back(&cluster.host(h));
  auto net = std::make_unique<TopologyNetwork>(std::move(hosts), &cluster);
  LOOM_RETURN_IF_ERROR(net->init(nranks));
  return std::unique_ptr<SimNetwork>(std::move(net));
}

}  // namespace loom::algo
