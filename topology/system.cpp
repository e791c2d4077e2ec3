// System::fromXml: the graph built from the topology tree (system.h).
#include "topology/system.h"

#include <algorithm>
#include <charconv>
#include <map>

#include "topology/cpuset.h"

namespace loom::topo {

double nvlinkBandwidthGBs(int sm) {
  // NCCL's SMxx_NVLINK_BW (topo.h), per link and direction.
  if (sm >= 100) return 40.1;
  if (sm >= 90) return 20.6;
  if (sm == 86) return 12.0;
  if (sm >= 70) return 20.0;
  if (sm >= 60) return 18.0;
  return 20.0;
}

double pciBandwidthGBs(std::string_view linkSpeed, int width) {
  // Per-lane rate in units of 100 Mb/s after encoding overhead, as NCCL's kvDictPciGen.
  struct Gen {
    const char* prefix;
    int rate;
  };
  static const Gen kGens[] = {{"2.5 GT/s", 15},   {"5 GT/s", 30},    {"5.0 GT/s", 30},
                              {"8 GT/s", 60},     {"8.0 GT/s", 60},  {"16 GT/s", 120},
                              {"16.0 GT/s", 120}, {"32 GT/s", 240},  {"32.0 GT/s", 240},
                              {"64 GT/s", 480},   {"64.0 GT/s", 480}};
  int rate = 60;  // unknown: assume PCIe Gen3
  for (const Gen& g : kGens)
    if (linkSpeed.starts_with(g.prefix)) rate = g.rate;
  if (width <= 0) width = 16;
  return width * rate / 80.0;
}

namespace {

// NCCL's inter-socket bandwidths (topo.h: *_QPI_BW, AMD_ZEN*_BW, ARM_BW), by CPU identity.
double interCpuBandwidthGBs(const XmlNode& cpu) {
  const std::string arch = cpu.attrOr("arch", "");
  const std::string vendor = cpu.attrOr("vendor", "");
  const int family = std::atoi(cpu.attrOr("familyid", "0").c_str());
  const int model = std::atoi(cpu.attrOr("modelid", "0").c_str());
  if (arch == "arm64" || arch == "aarch64") return 6.0;
  if (vendor == "GenuineIntel") {
    if (family == 6 && model >= 0xAD) return 40.0;  // Granite Rapids
    if (family == 6 && model >= 0x8F) return 22.0;  // Sapphire / Emerald Rapids
    if (family == 6 && model >= 0x55) return 10.0;  // Skylake and later
    return 6.0;
  }
  if (vendor == "AuthenticAMD") {
    if (family >= 0x1A) return 32.0;  // Zen 5
    if (family >= 0x19) return 24.0;  // Zen 3/4
    return 16.0;
  }
  return 10.0;
}

Result<int> intAttr(const XmlNode& n, std::string_view key, int fallback, bool required) {
  const std::string* v = n.attr(key);
  if (!v) {
    if (required)
      return invalidArgument("<" + n.name + "> lacks the attribute '" + std::string(key) + "'");
    return fallback;
  }
  int out = 0;
  std::string_view s = *v;
  int base = 10;
  if (s.starts_with("0x")) {
    s.remove_prefix(2);
    base = 16;
  }
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, base);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty())
    return invalidArgument("<" + n.name + " " + std::string(key) + "=\"" + *v +
                           "\">: not an integer");
  return out;
}

}  // namespace

class SystemBuilder {
 public:
  explicit SystemBuilder(System* s) : s_(*s) {}

  Status build() {
    const XmlNode& root = s_.xml_;
    if (root.name != "system" || root.attrOr("version", "") != "1")
      return invalidArgument("not a topology: the root must be <system version=\"1\">, not <" +
                             root.name + ">");
    for (const XmlNode& c : root.children) {
      if (c.name != "cpu") continue;
      LOOM_RETURN_IF_ERROR(addCpu(c));
    }
    if (s_.nodesOf(NodeType::kCpu).empty())
      return invalidArgument("topology of " + s_.hostName() + " has no <cpu> element");
    connectCpus();
    LOOM_RETURN_IF_ERROR(addNvlinks());
    numberNodes();
    s_.paths_ = computePaths(s_.nodes_);
    return Status::ok();
  }

 private:
  int addNode(Node n) {
    s_.nodes_.push_back(std::move(n));
    const int i = static_cast<int>(s_.nodes_.size()) - 1;
    s_.byType_[static_cast<int>(s_.nodes_.back().type)].push_back(i);
    return i;
  }
  void connect(int a, int b, LinkType type, double bw, double latencyUs, int nvlinks = 0) {
    for (Link& l : s_.nodes_[static_cast<size_t>(a)].links) {
      if (l.peer == b && l.type == type) {  // NVLinks to one peer bond into one link
        l.bandwidthGBs += bw;
        l.nvlinks += nvlinks;
        return;
      }
    }
    s_.nodes_[static_cast<size_t>(a)].links.push_back(Link{b, type, bw, latencyUs, nvlinks});
  }
  void connectBoth(int a, int b, LinkType type, double bw, double latencyUs) {
    connect(a, b, type, bw, latencyUs);
    connect(b, a, type, bw, latencyUs);
  }

  Status addCpu(const XmlNode& x) {
    Node n;
    n.type = NodeType::kCpu;
    LOOM_ASSIGN_OR_RETURN(n.numa, intAttr(x, "numaid", 0, true));
    if (n.numa < -1 || n.numa > 4095)
      return invalidArgument("<cpu numaid=\"" + std::to_string(n.numa) + "\">: out of range");
    if (s_.cpuOfNuma(n.numa) >= 0)
      return invalidArgument("two <cpu> elements with numaid " + std::to_string(n.numa));
    n.id = "numa" + std::to_string(n.numa);
    n.model = x.attrOr("model", "");
    if (const std::string* mask = x.attr("affinity")) {
      Result<std::vector<int>> cpus = parseCpuMask(*mask);
      if (!cpus.isOk())
        return cpus.status().withContext("<cpu numaid=" + std::to_string(n.numa) + ">");
      n.cpus = std::move(cpus).value();
    }
    const int cpu = addNode(std::move(n));
    cpuXml_.push_back({cpu, &x});
    for (const XmlNode& c : x.children)
      LOOM_RETURN_IF_ERROR(addChild(c, cpu, s_.nodes_[static_cast<size_t>(cpu)].numa, 1));
    return Status::ok();
  }

  // A <pci> or <nic> element under `parent` (a CPU or PCI switch node).
  Status addChild(const XmlNode& x, int parent, int numa, size_t depth) {
    if (depth > 64) return invalidArgument("PCI tree deeper than 64 levels");
    if (x.name == "nic") return addNic(x, parent, numa, "", kPciDefaultGBs);
    if (x.name != "pci") return Status::ok();  // unknown elements are carried, not modelled
    const std::string* busid = x.attr("busid");
    if (!busid) return invalidArgument("<pci> without a busid under " + s_.node(parent).id);
    LOOM_ASSIGN_OR_RETURN(int width, intAttr(x, "link_width", 0, false));
    const double bw = pciBandwidthGBs(x.attrOr("link_speed", ""), width);
    if (const XmlNode* gpu = x.child("gpu")) return addGpu(*gpu, *busid, parent, numa, bw);
    if (const XmlNode* nic = x.child("nic")) return addNic(*nic, parent, numa, *busid, bw);
    if (!x.child("pci") && !x.child("nic")) return Status::ok();  // an endpoint of no interest
    Node sw;
    sw.type = NodeType::kPci;
    sw.id = *busid;
    sw.numa = numa;
    const int me = addNode(std::move(sw));
    connectBoth(me, parent, LinkType::kPci, bw, kPciHopLatencyUs);
    for (const XmlNode& c : x.children)
      LOOM_RETURN_IF_ERROR(addChild(c, me, numa, depth + 1));
    return Status::ok();
  }

  Status addGpu(const XmlNode& x, const std::string& busid, int parent, int numa, double bw) {
    Node n;
    n.type = NodeType::kGpu;
    n.id = busid;
    n.numa = numa;
    n.model = x.attrOr("name", "");
    LOOM_ASSIGN_OR_RETURN(n.index, intAttr(x, "dev", 0, true));
    const int me = addNode(std::move(n));
    connectBoth(me, parent, LinkType::kPci, bw, kPciHopLatencyUs);
    gpuXml_.push_back({me, &x});
    return Status::ok();
  }

  Status addNic(const XmlNode& x, int parent, int numa, const std::string& busid, double bw) {
    Node n;
    n.type = NodeType::kNic;
    n.id = busid.empty() ? "nic" + std::to_string(s_.count(NodeType::kNic)) : busid;
    n.numa = numa;
    const int me = addNode(std::move(n));
    connectBoth(me, parent, LinkType::kPci, bw, kPciHopLatencyUs);
    for (const XmlNode& net : x.children) {
      if (net.name != "net") continue;
      const std::string* name = net.attr("name");
      if (!name) return invalidArgument("<net> without a name under NIC " + s_.node(me).id);
      LOOM_ASSIGN_OR_RETURN(int mbps, intAttr(net, "speed", 0, false));
      Node port;
      port.type = NodeType::kNet;
      port.id = *name;
      port.label = *name;
      port.numa = numa;
      LOOM_ASSIGN_OR_RETURN(port.index, intAttr(net, "dev", s_.count(NodeType::kNet), false));
      const double portBw = mbps > 0 ? mbps / 8000.0 : kDefaultNetBandwidthGBs;
      const int p = addNode(std::move(port));
      connectBoth(me, p, LinkType::kNet, portBw, kDefaultNetLatencyUs);
      if (s_.nodes_[static_cast<size_t>(me)].model.empty())
        s_.nodes_[static_cast<size_t>(me)].model = *name;
    }
    return Status::ok();
  }

  void connectCpus() {
    for (auto [a, ax] : cpuXml_)
      for (auto [b, bx] : cpuXml_)
        if (a != b) connect(a, b, LinkType::kSys, interCpuBandwidthGBs(*ax), kSysHopLatencyUs);
  }

  // Second pass, once every GPU exists: <nvlink target="busid" count="n" tclass="0x068000">.
  Status addNvlinks() {
    std::map<std::string, int> gpuByBus;
    for (auto [g, gx] : gpuXml_)
      gpuByBus[s_.node(g).id] = g;
    int nvswitch = -1;
    for (auto [g, gx] : gpuXml_) {
      LOOM_ASSIGN_OR_RETURN(int sm, intAttr(*gx, "sm", 0, false));
      for (const XmlNode& l : gx->children) {
        if (l.name != "nvlink") continue;
        LOOM_ASSIGN_OR_RETURN(int count, intAttr(l, "count", 1, false));
        if (count <= 0 || count > 64)
          return invalidArgument("<nvlink count=\"" + std::to_string(count) + "\"> of GPU " +
                                 s_.node(g).id + ": out of range");
        const double bw = count * nvlinkBandwidthGBs(sm);
        const std::string target = l.attrOr("target", "");
        const std::string tclass = l.attrOr("tclass", "");
        auto it = gpuByBus.find(target);
        if (it != gpuByBus.end() && tclass.rfind("0x03", 0) == 0) {
          connect(g, it->second, LinkType::kNvl, bw, kNvlHopLatencyUs, count);
        } else if (tclass == "0x068001") {  // NVLink to the CPU (POWER9)
          const int cpu = s_.cpuOfNuma(s_.node(g).numa);
          connect(g, cpu, LinkType::kNvl, bw, kNvlHopLatencyUs, count);
          connect(cpu, g, LinkType::kNvl, bw, kNvlHopLatencyUs, count);
        } else {  // an NVSwitch (NCCL: tclass 0x068000, or a target that is no GPU)
          if (nvswitch < 0) {
            Node nvs;
            nvs.type = NodeType::kNvSwitch;
            nvs.id = "nvswitch";
            nvs.label = "NVS";
            nvswitch = addNode(std::move(nvs));
          }
          connect(g, nvswitch, LinkType::kNvl, bw, kNvlHopLatencyUs, count);
          connect(nvswitch, g, LinkType::kNvl, bw, kNvlHopLatencyUs, count);
        }
      }
    }
    return Status::ok();
  }

  // GPUs by their NVML index, CPUs by NUMA id, NICs and ports in document order.
  void numberNodes() {
    auto& gpus = s_.byType_[static_cast<int>(NodeType::kGpu)];
    std::stable_sort(gpus.begin(), gpus.end(),
                     [&](int a, int b) { return s_.node(a).index < s_.node(b).index; });
    auto& cpus = s_.byType_[static_cast<int>(NodeType::kCpu)];
    std::stable_sort(cpus.begin(), cpus.end(),
                     [&](int a, int b) { return s_.node(a).numa < s_.node(b).numa; });
    auto& nets = s_.byType_[static_cast<int>(NodeType::kNet)];
    std::stable_sort(nets.begin(), nets.end(),
                     [&](int a, int b) { return s_.node(a).index < s_.node(b).index; });
    for (int t = 0; t < kNumNodeTypes; ++t) {
      const auto& list = s_.byType_[t];
      for (size_t i = 0; i < list.size(); ++i) {
        Node& n = s_.nodes_[static_cast<size_t>(list[i])];
        n.index = static_cast<int>(i);
        if (n.type == NodeType::kGpu) n.label = "GPU" + std::to_string(i);
        if (n.type == NodeType::kNic) n.label = "NIC" + std::to_string(i);
        if (n.type == NodeType::kCpu) n.label = "NUMA" + std::to_string(n.numa);
        if (n.type == NodeType::kPci) n.label = "PCI/" + n.id;
      }
    }
  }

  static constexpr double kPciDefaultGBs = 12.0;
  System& s_;
  std::vector<std::pair<int, const XmlNode*>> cpuXml_;
  std::vector<std::pair<int, const XmlNode*>> gpuXml_;
};

Result<System> System::fromXml(XmlNode root) {
  System s;
  s.xml_ = std::move(root);
  LOOM_RETURN_IF_ERROR(SystemBuilder(&s).build());
  return s;
}

int System::cpuOfNuma(int numaId) const {
  for (int c : nodesOf(NodeType::kCpu))
    if (node(c).numa == numaId) return c;
  return -1;
}

}  // namespace loom::topo
