// The PCI tree from sysfs (discover.h): every device of interest, placed under its switch and
// its NUMA node, with the NICs' ports and the GPUs found by the other sources attached.
#include <charconv>
#include <iterator>
#include <map>
#include <set>

#include "topology/cpuset.h"
#include "topology/discover_sources.h"

namespace loom::topo::detail {

namespace {

bool hexDigits(std::string_view s, size_t minLen, size_t maxLen) {
  if (s.size() < minLen || s.size() > maxLen) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
  return true;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// Device classes shown (lstopo's "important" I/O plus NVSwitch): mass storage, network,
// display/3D, processors, accelerators, and "other bridge" 0x0680 (NVSwitch on HGX A100).
bool interesting(const std::string& cls) {
  for (const char* p : {"0x01", "0x02", "0x03", "0x0b", "0x12", "0x0680"})
    if (cls.rfind(p, 0) == 0) return true;
  return false;
}

struct TreeNode {
  std::map<std::string, TreeNode> children;  // by bus id, so the output order is stable
  bool endpoint = false;
};

// The levels above a device, NCCL's way: skip the downstream port the device sits on and take
// the switch's upstream port above it; repeat to the root complex. chain holds the bus ids
// from the root port down to the device.
std::vector<std::string> switchPath(const std::vector<std::string>& chain) {
  std::vector<std::string> levels;
  for (int i = static_cast<int>(chain.size()) - 1; i >= 0; i -= 2)
    levels.insert(levels.begin(), chain[static_cast<size_t>(i)]);
  return levels;
}

int numaOfCpu(const HostFacts& facts, int cpu) {
  for (const XmlNode& c : facts.cpus) {
    Result<std::vector<int>> cpus = parseCpuMask(c.attrOr("affinity", ""));
    if (!cpus.isOk()) continue;
    for (int x : *cpus)
      if (x == cpu) return std::atoi(c.attrOr("numaid", "0").c_str());
  }
  return -1;
}

bool knownNuma(const HostFacts& facts, int numa) {
  for (const XmlNode& c : facts.cpus)
    if (c.attrOr("numaid", "") == std::to_string(numa)) return true;
  return false;
}

int deviceNuma(const FsRoot& fs, const HostFacts& facts, const std::string& bus) {
  const std::string dir = "/sys/bus/pci/devices/" + bus + "/";
  int numa = -1;
  const std::string text = fs.read(dir + "numa_node").value_or("-1");
  std::from_chars(text.data(), text.data() + text.size(), numa);
  if (numa < 0) {
    auto it = facts.numaOfPci.find(bus);
    if (it != facts.numaOfPci.end()) numa = it->second;
  }
  if (numa < 0) {
    Result<std::vector<int>> cpus = parseCpuList(fs.read(dir + "local_cpulist").value_or(""));
    if (cpus.isOk() && !cpus->empty()) numa = numaOfCpu(facts, cpus->front());
  }
  if (numa < 0 || !knownNuma(facts, numa))
    numa = std::atoi(facts.cpus.front().attrOr("numaid", "0").c_str());
  return numa;
}

XmlNode pciElement(const FsRoot& fs, const std::string& bus) {
  const std::string dir = "/sys/bus/pci/devices/" + bus + "/";
  XmlNode p("pci");
  p.set("busid", bus);
  for (const char* attr : {"class", "vendor", "device", "subsystem_vendor", "subsystem_device"})
    if (std::optional<std::string> v = fs.read(dir + attr, 64)) p.set(attr, *v);
  // The maximum link, as NCCL: an idle GPU trains its link down, the current speed would lie.
  std::optional<std::string> speed = fs.read(dir + "max_link_speed", 64);
  std::optional<std::string> width = fs.read(dir + "max_link_width", 64);
  if (speed && *speed != "Unknown" && width && *width != "0") {
    p.set("link_speed", *speed);
    p.set("link_width", *width);
  }
  return p;
}

class TreeBuilder {
 public:
  TreeBuilder(const FsRoot& fs, HostFacts* facts) : fs_(fs), facts_(*facts) {}

  void build() {
    const std::vector<std::string> devices = fs_.list("/sys/bus/pci/devices");
    const bool nvmlEmpty = facts_.gpus.empty();
    if (devices.empty())
      facts_.notes.push_back("sysfs: no PCI devices (" + fs_.root() +
                             "/sys/bus/pci/devices is empty or missing)");
    for (const std::string& name : devices) {
      const std::string bus = normalizeBusId(name);
      if (bus.empty()) continue;
      const std::string cls = fs_.read("/sys/bus/pci/devices/" + name + "/class").value_or("");
      if (!interesting(cls)) {
        ++hidden_;
        continue;
      }
      place(bus);
      if (nvmlEmpty && cls.rfind("0x03", 0) == 0 &&
          fs_.read("/sys/bus/pci/devices/" + name + "/vendor").value_or("") == "0x10de")
        sysfsGpus_.insert(bus);
    }
    for (XmlNode& cpu : facts_.cpus) {
      auto it = roots_.find(std::atoi(cpu.attrOr("numaid", "0").c_str()));
      if (it == roots_.end()) continue;
      for (auto& [bus, node] : it->second)
        cpu.add(emit(bus, node));
    }
    attachOrphans();
    if (!sysfsGpus_.empty())
      facts_.notes.push_back("sysfs: " + std::to_string(sysfsGpus_.size()) +
                             " NVIDIA GPU(s) without NVML: no NVLink or compute capability");
    facts_.notes.push_back("sysfs: " + std::to_string(shown_) + " PCI device(s) shown, " +
                           std::to_string(hidden_) + " bridge(s) and other device(s) not shown");
  }

 private:
  void place(const std::string& bus) {
    std::vector<std::string> chain;
    if (std::optional<std::string> real = fs_.resolve("/sys/bus/pci/devices/" + bus)) {
      size_t pos = 0;
      while (pos < real->size()) {
        size_t slash = real->find('/', pos);
        if (slash == std::string::npos) slash = real->size();
        const std::string part = normalizeBusId(real->substr(pos, slash - pos));
        if (!part.empty()) chain.push_back(part);
        pos = slash + 1;
      }
    }
    if (chain.empty() || chain.back() != bus) chain = {bus};
    const std::vector<std::string> levels = switchPath(chain);
    int numa = deviceNuma(fs_, facts_, bus);
    auto top = topNuma_.emplace(levels.front(), numa);  // a subtree stays on one NUMA node
    numa = top.first->second;
    TreeNode* node = &roots_[numa][levels.front()];
    for (size_t i = 1; i < levels.size(); ++i)
      node = &node->children[levels[i]];
    node->endpoint = true;
    ++shown_;
  }

  XmlNode emit(const std::string& bus, const TreeNode& node) {
    XmlNode p = pciElement(fs_, bus);
    if (node.endpoint) {
      if (auto g = facts_.gpus.find(bus); g != facts_.gpus.end()) {
        p.add(std::move(g->second));
        facts_.gpus.erase(g);
      }
      if (auto g = sysfsGpus_.find(bus); g != sysfsGpus_.end()) {
        // No NVML: the GPU is still shown, numbered in PCI order (CUDA_DEVICE_ORDER=PCI_BUS_ID).
        XmlNode gpu("gpu");
        gpu.set("dev", std::to_string(std::distance(sysfsGpus_.begin(), g)));
        p.add(std::move(gpu));
      }
      if (auto n = facts_.nets.find(bus); n != facts_.nets.end()) {
        XmlNode& nic = p.add(XmlNode("nic"));
        for (XmlNode& net : n->second)
          nic.add(std::move(net));
        facts_.nets.erase(n);
      }
    }
    for (const auto& [childBus, child] : node.children)
      p.add(emit(childBus, child));
    return p;
  }

  // GPUs and ports whose PCI device sysfs did not list (a container without /sys/bus/pci):
  // under the first NUMA node, so they are still seen.
  void attachOrphans() {
    XmlNode& cpu = facts_.cpus.front();
    for (auto& [bus, gpu] : facts_.gpus) {
      XmlNode p("pci");
      p.set("busid", bus);
      p.set("class", "0x030200");
      p.add(std::move(gpu));
      cpu.add(std::move(p));
      facts_.notes.push_back("GPU " + bus + " has no PCI device in sysfs; placed under NUMA " +
                             cpu.attrOr("numaid", "0"));
    }
    for (auto& [bus, nets] : facts_.nets) {
      XmlNode nic("nic");
      for (XmlNode& net : nets)
        nic.add(std::move(net));
      cpu.add(std::move(nic));
    }
    facts_.gpus.clear();
    facts_.nets.clear();
  }

  const FsRoot& fs_;
  HostFacts& facts_;
  std::map<int, std::map<std::string, TreeNode>> roots_;  // NUMA id -> top-level subtrees
  std::map<std::string, int> topNuma_;
  std::set<std::string> sysfsGpus_;  // NVIDIA display/3D devices, when NVML found no GPU
  int shown_ = 0;
  int hidden_ = 0;
};

}  // namespace

std::string normalizeBusId(const std::string& text) {
  // domain:bus:device.function with a 4 or 8 digit domain (NVML writes 8).
  const size_t c1 = text.find(':');
  const size_t c2 = c1 == std::string::npos ? c1 : text.find(':', c1 + 1);
  const size_t dot = c2 == std::string::npos ? c2 : text.find('.', c2 + 1);
  if (dot == std::string::npos) return "";
  const std::string_view s = text;
  std::string_view domain = s.substr(0, c1);
  const std::string_view bus = s.substr(c1 + 1, c2 - c1 - 1);
  const std::string_view dev = s.substr(c2 + 1, dot - c2 - 1);
  const std::string_view fn = s.substr(dot + 1);
  if (!hexDigits(domain, 4, 8) || !hexDigits(bus, 2, 2) || !hexDigits(dev, 2, 2) ||
      !hexDigits(fn, 1, 1))
    return "";
  if (domain.size() > 4) {
    if (domain.substr(0, domain.size() - 4).find_first_not_of('0') != std::string_view::npos)
      return "";
    domain = domain.substr(domain.size() - 4);
  }
  return lower(domain) + ":" + lower(bus) + ":" + lower(dev) + "." + lower(fn);
}

void pciTreeFromSysfs(const FsRoot& fs, HostFacts* facts) {
  TreeBuilder(fs, facts).build();
}

}  // namespace loom::topo::detail
