#include "topo_print.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <vector>

#include "topology/cpuset.h"

namespace loom::tools {

namespace {

using topo::NodeType;
using topo::XmlNode;

std::string pciClassName(const std::string& cls) {
  static const std::pair<const char*, const char*> kClasses[] = {
      {"0x0108", "NVMe"},      {"0x0106", "SATA"},       {"0x01", "Storage"},
      {"0x0200", "Ethernet"},  {"0x0207", "InfiniBand"}, {"0x02", "Network"},
      {"0x0300", "VGA"},       {"0x0302", "3D"},         {"0x03", "Display"},
      {"0x0604", "PCIBridge"}, {"0x068000", "NVSwitch"}, {"0x06", "Bridge"},
      {"0x0b", "Processor"},   {"0x12", "Accelerator"}};
  for (const auto& [prefix, name] : kClasses)
    if (cls.rfind(prefix, 0) == 0) return name;
  return cls.empty() ? "?" : cls;
}

std::string linkText(const XmlNode& pci) {
  const std::string speed = pci.attrOr("link_speed", "");
  const std::string width = pci.attrOr("link_width", "");
  if (speed.empty() || width.empty()) return "";
  char bw[32];
  std::snprintf(bw, sizeof(bw), "%.1f", topo::pciBandwidthGBs(speed, std::atoi(width.c_str())));
  std::string gts = speed.substr(0, speed.find(" PCIe"));
  return " " + gts + " x" + width + " (" + bw + " GB/s)";
}

std::string speedText(const std::string& mbps) {
  const long v = std::atol(mbps.c_str());
  if (v <= 0) return "speed unknown";
  return v % 1000 == 0 ? std::to_string(v / 1000) + " Gb/s" : std::to_string(v) + " Mb/s";
}

void line(std::string* out, size_t depth, const std::string& text) {
  out->append(depth * 2, ' ');
  *out += text;
  *out += '\n';
}

void renderNet(const XmlNode& net, size_t depth, std::string* out) {
  std::string t = "Net \"" + net.attrOr("name", "?") + "\" port " + net.attrOr("port", "1") + ": " +
                  net.attrOr("link_layer", "?") + ", " + net.attrOr("state", "?") + ", " +
                  speedText(net.attrOr("speed", "-1"));
  if (const std::string* g = net.attr("guid")) t += ", guid " + *g;
  if (const std::string* a = net.attr("address")) t += ", " + *a;
  if (const std::string* nd = net.attr("netdev")) t += ", netdev " + *nd;
  line(out, depth, t);
}

void renderGpu(const XmlNode& gpu, size_t depth, std::string* out) {
  std::string t = "GPU" + gpu.attrOr("dev", "?");
  if (const std::string* n = gpu.attr("name")) t += " \"" + *n + "\"";
  if (const std::string* sm = gpu.attr("sm")) t += " (sm_" + *sm + ")";
  if (!gpu.attr("sm")) t += " (seen in sysfs only: no NVML)";
  line(out, depth, t);
  for (const XmlNode& l : gpu.children) {
    if (l.name != "nvlink") continue;
    const std::string tclass = l.attrOr("tclass", "");
    const char* kind = tclass == "0x068000" ? "NVSwitch" : tclass == "0x068001" ? "CPU" : "GPU";
    line(
        out, depth + 1,
        "NVLink x" + l.attrOr("count", "1") + " -> " + l.attrOr("target", "?") + " (" + kind + ")");
  }
}

void renderPci(const XmlNode& pci, size_t depth, std::string* out) {
  const bool isSwitch = pci.child("pci") != nullptr;
  const std::string cls = pci.attrOr("class", "");
  line(out, depth,
       (isSwitch ? "PCIBridge " : "PCI ") + pci.attrOr("busid", "?") + " (" +
           (isSwitch ? "switch" : pciClassName(cls)) + ")" + linkText(pci));
  for (const XmlNode& c : pci.children) {
    if (c.name == "pci") renderPci(c, depth + 1, out);
    if (c.name == "gpu") renderGpu(c, depth + 1, out);
    if (c.name == "nic")
      for (const XmlNode& net : c.children)
        renderNet(net, depth + 1, out);
  }
}

}  // namespace

std::string renderTree(const topo::System& system) {
  const XmlNode& root = system.xml();
  std::map<std::string, std::vector<const XmlNode*>> packages;
  size_t pus = 0;
  for (const XmlNode& c : root.children) {
    if (c.name != "cpu") continue;
    packages[c.attrOr("package", "0")].push_back(&c);
  }
  for (int n : system.nodesOf(NodeType::kCpu))
    pus += system.node(n).cpus.size();
  std::string out;
  line(&out, 0,
       "Machine \"" + system.hostName() + "\": " + std::to_string(packages.size()) +
           " package(s), " + std::to_string(system.count(NodeType::kCpu)) + " NUMA node(s), " +
           std::to_string(pus) + " PU(s)");
  for (const auto& [pkg, cpus] : packages) {
    line(&out, 1, "Package P#" + pkg);
    for (const XmlNode* c : cpus) {
      const int node = system.cpuOfNuma(std::atoi(c->attrOr("numaid", "0").c_str()));
      std::string t = "NUMANode P#" + c->attrOr("numaid", "?");
      if (const std::string* mb = c->attr("memory_mb")) t += " (" + *mb + " MB)";
      t += ": PUs " + topo::formatCpuList(system.node(node).cpus);
      if (const std::string* cores = c->attr("cores")) t += ", " + *cores + " core(s)";
      if (const std::string* model = c->attr("model")) t += ", " + *model;
      line(&out, 2, t);
      for (const XmlNode& child : c->children) {
        if (child.name == "pci") renderPci(child, 3, &out);
        if (child.name == "nic")
          for (const XmlNode& net : child.children)
            renderNet(net, 3, &out);
      }
    }
  }
  return out;
}

std::string renderMatrix(const topo::System& system) {
  std::vector<int> devices = system.nodesOf(NodeType::kGpu);
  for (int n : system.nodesOf(NodeType::kNic))
    devices.push_back(n);
  if (devices.empty()) return "No GPU and no NIC: no device matrix to show.\n";
  size_t width = 5;
  for (int d : devices)
    width = std::max(width, system.node(d).label.size() + 2);
  auto pad = [](const std::string& s, size_t w) {
    return s.size() >= w ? s + " " : s + std::string(w - s.size(), ' ');
  };
  std::string out = pad("", width);
  for (int d : devices)
    out += pad(system.node(d).label, width);
  out += pad("CPU Affinity", 20) + "NUMA Affinity\n";
  for (int a : devices) {
    out += pad(system.node(a).label, width);
    for (int b : devices)
      out += pad(topo::matrixCell(system.path(a, b)), width);
    const int cpu = system.cpuOfNuma(system.node(a).numa);
    const std::string aff = cpu >= 0 ? topo::formatCpuList(system.node(cpu).cpus) : "N/A";
    out += pad(aff, 20) + (system.node(a).numa >= 0 ? std::to_string(system.node(a).numa) : "N/A");
    out += "\n";
  }
  out +=
      "\nLegend:\n\n"
      "  X    = Self\n"
      "  SYS  = Connection traversing PCIe as well as the SMP interconnect between NUMA nodes "
      "(e.g., QPI/UPI)\n"
      "  PHB  = Connection traversing PCIe as well as a PCIe Host Bridge (typically the CPU)\n"
      "  PXB  = Connection traversing multiple PCIe bridges (without traversing the PCIe Host "
      "Bridge)\n"
      "  PIX  = Connection traversing at most a single PCIe bridge\n"
      "  NVB  = Connection traversing NVLink through an intermediate GPU\n"
      "  NV#  = Connection traversing a bonded set of # NVLinks\n";
  if (system.count(NodeType::kNic) > 0) {
    out += "\nNIC Legend:\n\n";
    for (int n : system.nodesOf(NodeType::kNic))
      out += "  " + system.node(n).label + ": " + system.node(n).model + "\n";
  }
  return out;
}

std::string renderSummary(const topo::System& system) {
  std::string out;
  const int gpus = system.count(NodeType::kGpu);
  if (gpus == 0) {
    out += "GPUs: none\n";
  } else {
    std::string model = system.node(system.nodesOf(NodeType::kGpu).front()).model;
    out += "GPUs: " + std::to_string(gpus) + (model.empty() ? "" : " (" + model + ")") + "\n";
  }
  int ib = 0, eth = 0;
  // Ports by link layer, from the tree (the graph does not keep it).
  std::vector<const XmlNode*> stack{&system.xml()};
  while (!stack.empty()) {
    const XmlNode* x = stack.back();
    stack.pop_back();
    if (x->name == "net") (x->attrOr("link_layer", "") == "Ethernet" ? eth : ib)++;
    for (const XmlNode& c : x->children)
      stack.push_back(&c);
  }
  out += "NVSwitch: " + std::string(system.count(NodeType::kNvSwitch) ? "yes" : "none") + "\n";
  out += "InfiniBand/RDMA ports: " + (ib ? std::to_string(ib) : std::string("none")) + "\n";
  out += "Ethernet ports on PCI: " + (eth ? std::to_string(eth) : std::string("none")) + "\n";
  return out;
}

}  // namespace loom::tools
