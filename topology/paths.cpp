// Path computation and the vocabulary tables (system.h).
#include <algorithm>

#include "topology/system.h"

namespace loom::topo {

const char* nodeTypeName(NodeType t) {
  static const char* kNames[] = {"CPU", "PCI", "GPU", "NIC", "NVS", "NET"};
  return kNames[static_cast<int>(t)];
}

const char* linkTypeName(LinkType t) {
  static const char* kNames[] = {"LOC", "NVL", "PCI", "SYS", "NET"};
  return kNames[static_cast<int>(t)];
}

const char* pathTypeName(PathType t) {
  static const char* kNames[] = {"LOC", "NVL", "NVB", "PIX", "PXB", "PHB", "SYS", "NET", "DIS"};
  return kNames[static_cast<int>(t)];
}

std::optional<PathType> parsePathType(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(PathType::kDis); ++i)
    if (name == pathTypeName(static_cast<PathType>(i))) return static_cast<PathType>(i);
  return std::nullopt;
}

std::string matrixCell(const Path& p) {
  if (p.type == PathType::kLoc) return "X";
  if (p.type == PathType::kNvl) return "NV" + std::to_string(p.nvlinks);
  return pathTypeName(p.type);
}

namespace {

// The class of one hop from `from` over `link` (NCCL's rules in paths.cc: a PCI link between
// two switches is PXB, a PCI link touching a CPU is PHB, NVLink leaving a GPU that is not the
// source is NVB; the NET link counts as LOC so a GPU's path to a port is its path to the NIC).
PathType hopType(const std::vector<Node>& nodes, int from, const Link& link, bool fromIsSource) {
  const Node& a = nodes[static_cast<size_t>(from)];
  const Node& b = nodes[static_cast<size_t>(link.peer)];
  switch (link.type) {
    case LinkType::kLoc:
    case LinkType::kNet:
      return PathType::kLoc;
    case LinkType::kNvl:
      return a.type == NodeType::kGpu && !fromIsSource ? PathType::kNvb : PathType::kNvl;
    case LinkType::kPci:
      if (a.type == NodeType::kCpu || b.type == NodeType::kCpu) return PathType::kPhb;
      if (a.type == NodeType::kPci && b.type == NodeType::kPci) return PathType::kPxb;
      return PathType::kPix;
    case LinkType::kSys:
      return PathType::kSys;
  }
  return PathType::kDis;
}

// Whether a path that reached `node` (not the source) may continue over `link`.
bool mayTransit(const Node& node, const Path& reached, const Link& link) {
  switch (node.type) {
    case NodeType::kNic:
    case NodeType::kNet:
      return false;
    case NodeType::kGpu:
      return link.type == LinkType::kNvl && reached.type <= PathType::kNvb;
    default:
      return true;
  }
}

void pathsFrom(const std::vector<Node>& nodes, int source, std::vector<Path>* paths) {
  const size_t n = nodes.size();
  Path* row = paths->data() + static_cast<size_t>(source) * n;
  row[source] = Path{PathType::kLoc, kLocBandwidthGBs, 0, 0, 0};
  std::vector<char> reached(n, 0);
  reached[static_cast<size_t>(source)] = 1;
  std::vector<int> frontier{source}, next;
  while (!frontier.empty()) {
    next.clear();
    for (int at : frontier) {
      const Node& node = nodes[static_cast<size_t>(at)];
      const Path& here = row[at];
      for (const Link& link : node.links) {
        if (at != source && !mayTransit(node, here, link)) continue;
        const int peer = link.peer;
        Path& there = row[peer];
        const double bw = std::min(here.bandwidthGBs, link.bandwidthGBs);
        const bool shorter = !reached[static_cast<size_t>(peer)] || there.hops > here.hops;
        if (!shorter || there.bandwidthGBs >= bw) continue;
        there.type = std::max(here.type, hopType(nodes, at, link, at == source));
        there.bandwidthGBs = bw;
        there.latencyUs = here.latencyUs + link.latencyUs;
        there.hops = here.hops + 1;
        if (link.type == LinkType::kNvl)
          there.nvlinks = here.nvlinks ? std::min(here.nvlinks, link.nvlinks) : link.nvlinks;
        else
          there.nvlinks = here.nvlinks;
        reached[static_cast<size_t>(peer)] = 1;
        if (std::find(next.begin(), next.end(), peer) == next.end()) next.push_back(peer);
      }
    }
    frontier.swap(next);
  }
}

}  // namespace

std::vector<Path> computePaths(const std::vector<Node>& nodes) {
  std::vector<Path> paths(nodes.size() * nodes.size());
  for (size_t s = 0; s < nodes.size(); ++s)
    pathsFrom(nodes, static_cast<int>(s), &paths);
  return paths;
}

}  // namespace loom::topo
