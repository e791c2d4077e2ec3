// NICs from /sys/class/infiniband (HCAs, one <net> per port) and /sys/class/net (Ethernet
// netdevs backed by a PCI device that is not an HCA), attached to their PCI devices.
#include <charconv>
#include <set>

#include "topology/discover_sources.h"

namespace loom::topo::detail {

namespace {

// "/sys/devices/pci0000:00/0000:00:03.0" -> "0000:00:03.0"; the PCI function owning a device
// path (the deepest bus-id component). "" for a virtual device.
std::string pciOf(const FsRoot& fs, const std::string& deviceLink) {
  std::optional<std::string> real = fs.resolve(deviceLink);
  if (!real) return "";
  std::string found;
  size_t pos = 0;
  while (pos < real->size()) {
    size_t slash = real->find('/', pos);
    if (slash == std::string::npos) slash = real->size();
    std::string part = normalizeBusId(real->substr(pos, slash - pos));
    if (!part.empty()) found = std::move(part);
    pos = slash + 1;
  }
  return found;
}

// "400 Gb/sec (4X NDR)" -> 400000 (Mb/s); -1 when unreadable.
int rateMbps(const std::string& rate) {
  double gbps = -1;
  auto [p, ec] = std::from_chars(rate.data(), rate.data() + rate.size(), gbps);
  if (ec != std::errc() || gbps <= 0 || gbps > 1e6) return -1;
  return static_cast<int>(gbps * 1000);
}

// "b83f:d203:00aa:bbcc" -> "0xb83fd20300aabbcc".
std::string guidText(const std::string& guid) {
  std::string hex;
  for (char c : guid)
    if (c != ':') hex += c;
  return hex.empty() ? "" : "0x" + hex;
}

// "4: ACTIVE" -> "ACTIVE".
std::string afterColon(const std::string& s) {
  const size_t c = s.find(':');
  std::string v = c == std::string::npos ? s : s.substr(c + 1);
  while (!v.empty() && v.front() == ' ')
    v.erase(0, 1);
  return v;
}

}  // namespace

void nicsFromSysfs(const FsRoot& fs, HostFacts* facts) {
  int dev = 0;
  std::set<std::string> hcaBuses;
  const std::vector<std::string> hcas = fs.list("/sys/class/infiniband", 256);
  int ports = 0;
  for (const std::string& hca : hcas) {
    const std::string base = "/sys/class/infiniband/" + hca;
    const std::string bus = pciOf(fs, base + "/device");
    std::string netdevs;
    for (const std::string& nd : fs.list(base + "/device/net", 64))
      netdevs += (netdevs.empty() ? "" : ",") + nd;
    for (const std::string& port : fs.list(base + "/ports", 64)) {
      const std::string pbase = base + "/ports/" + port + "/";
      XmlNode net("net");
      net.set("name", hca);
      net.set("dev", std::to_string(dev++));
      net.set("speed", std::to_string(rateMbps(fs.read(pbase + "rate").value_or(""))));
      net.set("port", port);
      if (std::string g = guidText(fs.read(base + "/node_guid", 64).value_or("")); !g.empty())
        net.set("guid", g);
      net.set("link_layer", fs.read(pbase + "link_layer", 64).value_or("InfiniBand"));
      net.set("state", afterColon(fs.read(pbase + "state", 64).value_or("unknown")));
      if (!netdevs.empty()) net.set("netdev", netdevs);
      facts->nets[bus].push_back(std::move(net));
      ++ports;
    }
    if (!bus.empty()) hcaBuses.insert(bus);
  }
  if (hcas.empty())
    facts->notes.push_back("InfiniBand: none (" + fs.root() +
                           "/sys/class/infiniband is empty or missing: no RDMA devices)");
  else
    facts->notes.push_back("InfiniBand: " + std::to_string(hcas.size()) + " device(s), " +
                           std::to_string(ports) + " port(s)");

  int ethernet = 0, virtualIfs = 0;
  for (const std::string& ifname : fs.list("/sys/class/net", 1024)) {
    const std::string base = "/sys/class/net/" + ifname;
    const std::string bus = pciOf(fs, base + "/device");
    if (bus.empty()) {
      ++virtualIfs;
      continue;
    }
    if (hcaBuses.count(bus)) continue;  // the netdev of an HCA port (IPoIB, RoCE) is listed there
    XmlNode net("net");
    net.set("name", ifname);
    net.set("dev", std::to_string(dev++));
    int mbps = -1;
    const std::string speed = fs.read(base + "/speed", 64).value_or("-1");
    std::from_chars(speed.data(), speed.data() + speed.size(), mbps);
    net.set("speed", std::to_string(mbps > 0 ? mbps : -1));
    net.set("port", "1");
    net.set("link_layer", "Ethernet");
    net.set("state", fs.read(base + "/operstate", 64).value_or("unknown"));
    if (std::optional<std::string> mac = fs.read(base + "/address", 64)) net.set("address", *mac);
    facts->nets[bus].push_back(std::move(net));
    ++ethernet;
  }
  facts->notes.push_back("net: " + std::to_string(ethernet) + " PCI Ethernet interface(s), " +
                         std::to_string(virtualIfs) + " virtual interface(s) not shown");
}

}  // namespace loom::topo::detail
