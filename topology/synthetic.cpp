#include "topology/synthetic.h"

#include <cstdio>

#include "topology/cpuset.h"

namespace loom::topo {

namespace {

std::string busId(int bus) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0000:%02x:00.0", bus & 0xff);
  return buf;
}

XmlNode pci(int bus, const char* cls, const char* vendor, const char* device, const char* speed,
            int width) {
  XmlNode p("pci");
  p.set("busid", busId(bus));
  p.set("class", cls);
  p.set("vendor", vendor);
  p.set("device", device);
  p.set("subsystem_vendor", vendor);
  p.set("subsystem_device", device);
  p.set("link_speed", speed);
  p.set("link_width", std::to_string(width));
  return p;
}

XmlNode pciSwitch(int bus, const char* speed) {
  return pci(bus, "0x060400", "0x1000", "0xc030", speed, 16);  // a Broadcom PEX switch
}

std::vector<int> range(int lo, int hi) {
  std::vector<int> v;
  for (int c = lo; c <= hi; ++c)
    v.push_back(c);
  return v;
}

XmlNode cpu(int numa, std::vector<int> cpus, const char* vendor, int family, int model,
            const char* name, int cores, int64_t memoryMb) {
  XmlNode c("cpu");
  c.set("numaid", std::to_string(numa));
  c.set("affinity", formatCpuMask(cpus));
  c.set("arch", "x86_64");
  c.set("vendor", vendor);
  c.set("familyid", std::to_string(family));
  c.set("modelid", std::to_string(model));
  c.set("package", std::to_string(numa));
  c.set("cores", std::to_string(cores));
  c.set("memory_mb", std::to_string(memoryMb));
  c.set("model", name);
  return c;
}

XmlNode gpu(int bus, int dev, const char* device, int sm, const char* name, const char* speed) {
  XmlNode p = pci(bus, "0x030200", "0x10de", device, speed, 16);
  XmlNode g("gpu");
  g.set("dev", std::to_string(dev));
  g.set("sm", std::to_string(sm));
  g.set("name", name);
  p.add(std::move(g));
  return p;
}

XmlNode nic(int bus, int dev, const char* device, int speedMbps, const char* speed) {
  XmlNode p = pci(bus, "0x020700", "0x15b3", device, speed, 16);
  XmlNode net("net");
  net.set("name", "mlx5_" + std::to_string(dev));
  net.set("dev", std::to_string(dev));
  net.set("speed", std::to_string(speedMbps));
  net.set("port", "1");
  char guid[32];
  std::snprintf(guid, sizeof(guid), "0x%016llx",
                0xb83fd20300a00000ull + static_cast<unsigned>(dev));
  net.set("guid", guid);
  net.set("link_layer", "InfiniBand");
  net.set("state", "ACTIVE");
  p.add(XmlNode("nic")).add(std::move(net));
  return p;
}

XmlNode systemRoot(const std::string& hostName) {
  XmlNode s("system");
  s.set("version", "1");
  s.set("name", hostName);
  return s;
}

}  // namespace

XmlNode makePcieServer(const std::string& hostName) {
  constexpr const char* kGen4 = "16.0 GT/s PCIe";
  constexpr const char* kL40s = "NVIDIA L40S";
  XmlNode s = systemRoot(hostName);
  // Two Xeon Gold 6338 (Ice Lake): 32 cores, 64 threads each.
  std::vector<int> numa0 = range(0, 31), numa1 = range(32, 63);
  for (int c : range(64, 95))
    numa0.push_back(c);
  for (int c : range(96, 127))
    numa1.push_back(c);
  XmlNode& cpu0 = s.add(cpu(0, numa0, "GenuineIntel", 6, 106,
                            "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz", 32, 257000));
  XmlNode& sw0 = cpu0.add(pciSwitch(0x17, kGen4));
  sw0.add(gpu(0x18, 0, "0x26b9", 89, kL40s, kGen4));
  sw0.add(gpu(0x19, 1, "0x26b9", 89, kL40s, kGen4));
  sw0.add(nic(0x1a, 0, "0x101b", 200000, kGen4));
  XmlNode& cpu1 = s.add(cpu(1, numa1, "GenuineIntel", 6, 106,
                            "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz", 32, 258000));
  XmlNode& sw1 = cpu1.add(pciSwitch(0x97, kGen4));
  sw1.add(pciSwitch(0x98, kGen4)).add(gpu(0x99, 2, "0x26b9", 89, kL40s, kGen4));
  XmlNode& leaf = sw1.add(pciSwitch(0x9a, kGen4));
  leaf.add(gpu(0x9b, 3, "0x26b9", 89, kL40s, kGen4));
  leaf.add(nic(0x9c, 1, "0x101b", 200000, kGen4));
  return s;
}

XmlNode makeDgxH100(const std::string& hostName) {
  constexpr const char* kGen5 = "32.0 GT/s PCIe";
  constexpr const char* kH100 = "NVIDIA H100 80GB HBM3";
  constexpr int kSwitchLinks[4] = {5, 4, 4, 5};  // NVLinks of each GPU to each NVSwitch chip
  XmlNode s = systemRoot(hostName);
  for (int socket = 0; socket < 2; ++socket) {
    // Xeon Platinum 8480C (Sapphire Rapids): 56 cores, 112 threads per socket.
    std::vector<int> cpus = range(socket * 56, socket * 56 + 55);
    for (int c : range(112 + socket * 56, 112 + socket * 56 + 55))
      cpus.push_back(c);
    XmlNode& c = s.add(
        cpu(socket, cpus, "GenuineIntel", 6, 143, "Intel(R) Xeon(R) Platinum 8480C", 56, 1031000));
    if (socket == 0) {  // the NVSwitch chips' management functions
      for (int n = 0; n < 4; ++n)
        c.add(pci(0x05 + n, "0x068000", "0x10de", "0x22a3", kGen5, 2));
    }
    for (int top = 0; top < 2; ++top) {
      const int base = 0x10 + socket * 0x80 + top * 0x20;
      XmlNode& upper = c.add(pciSwitch(base, kGen5));
      for (int leaf = 0; leaf < 2; ++leaf) {
        const int i = socket * 4 + top * 2 + leaf;  // GPU i and NIC i share a leaf switch
        const int lb = base + 1 + leaf * 0x10;
        XmlNode& sw = upper.add(pciSwitch(lb, kGen5));
        XmlNode g = gpu(lb + 2, i, "0x2330", 90, kH100, kGen5);
        for (int n = 0; n < 4; ++n) {
          XmlNode l("nvlink");
          l.set("target", busId(0x05 + n));
          l.set("count", std::to_string(kSwitchLinks[n]));
          l.set("tclass", "0x068000");
          g.children.front().add(std::move(l));
        }
        sw.add(std::move(g));
        sw.add(nic(lb + 1, i, "0x1021", 400000, kGen5));
      }
    }
  }
  return s;
}

std::vector<std::string> syntheticNames() {
  return {"pcie-4gpu", "dgx-h100"};
}

Result<XmlNode> makeSynthetic(const std::string& kind, const std::string& hostName) {
  if (kind == "pcie-4gpu") return makePcieServer(hostName);
  if (kind == "dgx-h100") return makeDgxH100(hostName);
  std::string names;
  for (const std::string& n : syntheticNames())
    names += (names.empty() ? "" : ", ") + n;
  return invalidArgument("unknown synthetic topology '" + kind + "' (known: " + names + ")");
}

}  // namespace loom::topo
