#include "runtime/topo_fusion.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>

#include "base/host.h"
#include "base/log.h"
#include "base/wire.h"
#include "topology/cpuset.h"
#include "topology/discover.h"

namespace loom::runtime {

namespace {

constexpr uint32_t kPlaceMagic = 0x706f746c;  // "ltop"
constexpr size_t kMaxHostBytes = 1024;
constexpr size_t kMaxCpuListBytes = 64 * 1024;

std::vector<int> allowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

// The best port of a host (its widest NET link), for paths between hosts.
double widestPortGBs(const topo::System* s) {
  double best = 0;
  if (s != nullptr)
    for (int n : s->nodesOf(topo::NodeType::kNic))
      for (const topo::Link& l : s->node(n).links)
        if (l.type == topo::LinkType::kNet) best = std::max(best, l.bandwidthGBs);
  return best > 0 ? best : topo::kDefaultNetBandwidthGBs;
}

Result<RankPlace> decodePlace(const std::vector<uint8_t>& bytes, int rank,
                              std::vector<uint8_t>* tree) {
  const std::string what = "topology of rank " + std::to_string(rank);
  ByteReader r(bytes.data(), bytes.size(), what);
  uint32_t magic = 0, numa = 0, gpu = 0;
  uint8_t hasTree = 0;
  RankPlace p;
  std::string cpus;
  LOOM_RETURN_IF_ERROR(r.u32(&magic));
  if (magic != kPlaceMagic) return remoteError(what + ": bad magic (a different loom version?)");
  LOOM_RETURN_IF_ERROR(r.str(&p.hostId, kMaxHostBytes));
  LOOM_RETURN_IF_ERROR(r.str(&p.hostName, kMaxHostBytes));
  LOOM_RETURN_IF_ERROR(r.i64(&p.pid));
  LOOM_RETURN_IF_ERROR(r.u32(&numa));
  LOOM_RETURN_IF_ERROR(r.u32(&gpu));
  LOOM_RETURN_IF_ERROR(r.str(&cpus, kMaxCpuListBytes));
  LOOM_RETURN_IF_ERROR(r.u8(&hasTree));
  p.numa = static_cast<int32_t>(numa);
  p.gpu = static_cast<int32_t>(gpu);
  Result<std::vector<int>> list = topo::parseCpuList(cpus);
  if (!list.isOk()) return list.status().withContext(what);
  p.cpus = std::move(list).value();
  tree->clear();
  if (hasTree) {
    std::string blob;
    LOOM_RETURN_IF_ERROR(r.str(&blob, topo::XmlLimits{}.maxBytes));
    tree->assign(blob.begin(), blob.end());
  }
  LOOM_RETURN_IF_ERROR(r.expectEnd());
  return p;
}

}  // namespace

std::vector<uint8_t> encodePlace(const RankPlace& place, const topo::System* system,
                                 bool sendTree) {
  ByteWriter w;
  w.u32(kPlaceMagic);
  w.str(place.hostId);
  w.str(place.hostName);
  w.i64(place.pid);
  w.u32(static_cast<uint32_t>(place.numa));
  w.u32(static_cast<uint32_t>(place.gpu));
  w.str(topo::formatCpuList(place.cpus));
  const bool tree = sendTree && system != nullptr;
  w.u8(tree ? 1 : 0);
  if (tree) {
    const std::vector<uint8_t> blob = topo::encodeTree(system->xml());
    w.str(std::string(blob.begin(), blob.end()));
  }
  return w.take();
}

RankPlace localPlace(const Config& config, const topo::System* system) {
  RankPlace p;
  p.hostId = hostIdentity(config.hostId);
  p.hostName = hostName();
  p.pid = ::getpid();
  p.cpus = allowedCpus();
  if (system == nullptr || p.cpus.empty()) return p;
  for (int c : system->nodesOf(topo::NodeType::kCpu)) {
    const std::vector<int>& mine = system->node(c).cpus;
    if (std::includes(mine.begin(), mine.end(), p.cpus.begin(), p.cpus.end()))
      p.numa = system->node(c).numa;
  }
  return p;
}

Result<TopoView> TopoView::fromExchange(const std::vector<std::vector<uint8_t>>& all) {
  TopoView v;
  std::vector<std::vector<uint8_t>> trees(all.size());
  std::vector<std::string> hostIds;
  for (size_t r = 0; r < all.size(); ++r) {
    LOOM_ASSIGN_OR_RETURN(RankPlace p, decodePlace(all[r], static_cast<int>(r), &trees[r]));
    hostIds.push_back(p.hostId);
    v.places_.push_back(std::move(p));
  }
  v.hosts_ = topo::HostMap(hostIds);
  v.systems_.resize(static_cast<size_t>(v.hosts_.nhosts()));
  for (int h = 0; h < v.hosts_.nhosts(); ++h) {
    for (int r : v.hosts_.ranksOn(h)) {
      const std::vector<uint8_t>& blob = trees[static_cast<size_t>(r)];
      if (blob.empty()) continue;
      const std::string what = "topology tree of rank " + std::to_string(r);
      Result<topo::XmlNode> tree = topo::decodeTree(blob.data(), blob.size(), {}, what);
      Result<topo::System> sys =
          tree.isOk() ? topo::System::fromXml(std::move(tree).value()) : tree.status();
      if (!sys.isOk()) {
        LOOM_LOG(kWarn, kTopo) << "ignoring the " << what << ": " << sys.status().toString();
        continue;
      }
      v.systems_[static_cast<size_t>(h)] =
          std::make_shared<const topo::System>(std::move(sys).value());
      break;
    }
  }
  for (RankPlace& p : v.places_) {
    const topo::System* s = v.system(v.hosts_.hostOf(static_cast<int>(&p - v.places_.data())));
    if (s == nullptr) continue;
    if (p.gpu >= 0 && p.gpu < s->count(topo::NodeType::kGpu))
      p.node = s->nodesOf(topo::NodeType::kGpu)[static_cast<size_t>(p.gpu)];
    else if (p.numa >= 0)
      p.node = s->cpuOfNuma(p.numa);
    else if (s->count(topo::NodeType::kCpu) == 1)
      p.node = s->nodesOf(topo::NodeType::kCpu).front();
  }
  v.computePaths();
  return v;
}

void TopoView::computePaths() {
  const size_t n = places_.size();
  paths_.assign(n * n, topo::Path{});
  for (size_t a = 0; a < n; ++a) {
    for (size_t b = 0; b < n; ++b) {
      topo::Path& p = paths_[a * n + b];
      const RankPlace& pa = places_[a];
      const RankPlace& pb = places_[b];
      const int ha = hosts_.hostOf(static_cast<int>(a)), hb = hosts_.hostOf(static_cast<int>(b));
      const topo::System* s = system(ha);
      if (ha != hb) {
        p.type = topo::PathType::kNet;
        p.bandwidthGBs = std::min(widestPortGBs(s), widestPortGBs(system(hb)));
        p.latencyUs = 2 * topo::kDefaultNetLatencyUs;
        p.hops = 2;
      } else if (a == b || (s == nullptr && pa.numa == pb.numa && pa.numa >= 0)) {
        p = topo::Path{topo::PathType::kLoc, topo::kLocBandwidthGBs, 0, 0, 0};
      } else if (s != nullptr && pa.node >= 0 && pb.node >= 0) {
        p = s->path(pa.node, pb.node);
      } else if (s != nullptr && s->count(topo::NodeType::kCpu) > 1) {
        p.type = topo::PathType::kSys;  // unbound: may cross sockets
        const std::vector<int>& cpus = s->nodesOf(topo::NodeType::kCpu);
        p.bandwidthGBs = s->path(cpus[0], cpus[1]).bandwidthGBs;
        p.latencyUs = topo::kSysHopLatencyUs;
        p.hops = 1;
      } else {
        p = topo::Path{topo::PathType::kLoc, topo::kLocBandwidthGBs, 0, 0, 0};
      }
    }
  }
}

std::string TopoView::describe(int rank) const {
  const RankPlace& p = place(rank);
  std::string out = "rank " + std::to_string(rank) + ": host " + p.hostName + " (pid " +
                    std::to_string(p.pid) + ")";
  if (p.gpu >= 0) out += ", GPU " + std::to_string(p.gpu);
  out += p.numa >= 0 ? ", NUMA " + std::to_string(p.numa) : ", NUMA unbound";
  out += ", CPUs " + (p.cpus.empty() ? std::string("?") : topo::formatCpuList(p.cpus));
  return out;
}

Result<std::shared_ptr<const TopoView>> fuseTopology(bootstrap::Bootstrap& bootstrap,
                                                     const Config& config, int rank,
                                                     const topo::HostMap& hosts) {
  std::shared_ptr<const topo::System> local;
  Result<std::shared_ptr<const topo::System>> sys = topo::localSystem(config);
  if (sys.isOk()) {
    local = std::move(sys).value();
  } else if (!config.topoFile.empty()) {
    return sys.status();
  } else {
    LOOM_LOG(kWarn, kTopo) << "host topology unavailable (" << sys.status().toString()
                           << "); continuing without it";
  }
  const RankPlace me = localPlace(config, local.get());
  const bool leader = hosts.localRank(rank) == 0;
  Result<std::vector<bootstrap::Bytes>> all =
      bootstrap.allGather(encodePlace(me, local.get(), leader));
  if (!all.isOk()) return all.status().withContext("exchanging host topology at init");
  LOOM_ASSIGN_OR_RETURN(TopoView view, TopoView::fromExchange(*all));
  LOOM_LOG(kInfo, kTopo) << view.describe(rank) << "; " << view.hosts().nhosts() << " host(s)";
  return std::make_shared<const TopoView>(std::move(view));
}

}  // namespace loom::runtime
