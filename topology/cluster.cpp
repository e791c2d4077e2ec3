#include "topology/cluster.h"

#include <algorithm>
#include <cstdio>

#include "topology/synthetic.h"

namespace loom::topo {

Result<XmlNode> makeRailCluster(int servers, int hostsPerLeaf, const std::string& hostPrefix) {
  if (servers < 1 || servers > 4096)
    return invalidArgument("a cluster has 1..4096 servers, not " + std::to_string(servers));
  if (hostsPerLeaf < 1)
    return invalidArgument("hosts per leaf must be positive, not " + std::to_string(hostsPerLeaf));
  XmlNode c("cluster");
  c.set("version", "1");
  c.set("name", "rail-fat-tree-" + std::to_string(servers));
  XmlNode& fabric = c.add(XmlNode("fabric"));
  fabric.set("type", "rail-fat-tree");
  fabric.set("rails", "8");
  fabric.set("hosts_per_leaf", std::to_string(hostsPerLeaf));
  fabric.set("leaves", std::to_string(8 * ((servers + hostsPerLeaf - 1) / hostsPerLeaf)));
  fabric.set("speed", "400000");
  for (int h = 0; h < servers; ++h) {
    char name[64];
    std::snprintf(name, sizeof(name), "%s%03d", hostPrefix.c_str(), h);
    c.add(makeDgxH100(name));
  }
  return c;
}

Result<Cluster> Cluster::fromXml(const XmlNode& root) {
  if (root.name != "cluster" || root.attrOr("version", "") != "1")
    return invalidArgument("not a cluster: the root must be <cluster version=\"1\">, not <" +
                           root.name + ">");
  Cluster c;
  if (const XmlNode* fabric = root.child("fabric")) {
    c.hostsPerLeaf_ = std::atoi(fabric->attrOr("hosts_per_leaf", "32").c_str());
    if (c.hostsPerLeaf_ < 1)
      return invalidArgument("<fabric hosts_per_leaf> must be a positive integer");
  }
  for (const XmlNode& s : root.children) {
    if (s.name != "system") continue;
    Result<System> sys = System::fromXml(s);
    if (!sys.isOk())
      return sys.status().withContext("host " + std::to_string(c.hosts_.size()) + " of cluster");
    c.hosts_.push_back(std::make_shared<const System>(std::move(sys).value()));
  }
  if (c.hosts_.empty()) return invalidArgument("cluster has no <system> element");
  return c;
}

int Cluster::nicOf(int hostIndex, int node) const {
  const System& s = host(hostIndex);
  int best = -1;
  for (int n : s.nodesOf(NodeType::kNic)) {
    if (best < 0) {
      best = n;
      continue;
    }
    const Path& p = s.path(node, n);
    const Path& q = s.path(node, best);
    if (p.type < q.type || (p.type == q.type && p.bandwidthGBs > q.bandwidthGBs)) best = n;
  }
  return best;
}

int Cluster::railOf(int hostIndex, int node) const {
  const int nic = nicOf(hostIndex, node);
  return nic < 0 ? -1 : host(hostIndex).node(nic).index;
}

int Cluster::switchHops(const ClusterDevice& a, const ClusterDevice& b) const {
  if (a.host == b.host) return 0;
  const bool sameRail = railOf(a.host, a.node) == railOf(b.host, b.node);
  const bool sameLeaf = a.host / hostsPerLeaf_ == b.host / hostsPerLeaf_;
  return sameRail && sameLeaf ? 1 : 3;  // leaf, or leaf-spine-leaf
}

Path Cluster::path(const ClusterDevice& a, const ClusterDevice& b) const {
  if (a.host == b.host) return host(a.host).path(a.node, b.node);
  const int na = nicOf(a.host, a.node), nb = nicOf(b.host, b.node);
  if (na < 0 || nb < 0) return Path{};  // DIS: a host without a NIC
  const System& ha = host(a.host);
  const System& hb = host(b.host);
  // The port's bandwidth: the NET link of the NIC.
  auto portGBs = [](const System& s, int nic) {
    double bw = kDefaultNetBandwidthGBs;
    for (const Link& l : s.node(nic).links)
      if (l.type == LinkType::kNet) bw = l.bandwidthGBs;
    return bw;
  };
  const Path& up = ha.path(a.node, na);
  const Path& down = hb.path(nb, b.node);
  Path p;
  p.type = PathType::kNet;
  p.bandwidthGBs = std::min({up.bandwidthGBs, down.bandwidthGBs, portGBs(ha, na), portGBs(hb, nb)});
  const int hops = switchHops(a, b);
  p.latencyUs =
      up.latencyUs + down.latencyUs + 2 * kDefaultNetLatencyUs + hops * kSwitchHopLatencyUs;
  p.hops = up.hops + down.hops + hops + 1;
  return p;
}

}  // namespace loom::topo
