// CPU side of discovery from sysfs and /proc (the fallback when hwloc is absent, and the only
// source on a fake root): NUMA nodes, their PUs, cores, package and memory, and the CPU model.
#include <sys/utsname.h>

#include <charconv>
#include <set>

#include "topology/cpuset.h"
#include "topology/discover_sources.h"

namespace loom::topo::detail {

std::string machineArch() {
  utsname un{};
  if (::uname(&un) != 0) return "unknown";
  return un.machine;
}

namespace {

int toInt(std::string_view s, int fallback) {
  int v = fallback;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() ? v : fallback;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

struct CpuIdentity {
  std::string vendor, family, model, name;
};

// The first processor block of /proc/cpuinfo (x86 field names; other architectures leave
// the fields empty).
CpuIdentity cpuIdentity(const FsRoot& fs) {
  CpuIdentity id;
  const std::optional<std::string> info = fs.read("/proc/cpuinfo", 1 << 20);
  if (!info) return id;
  std::string_view rest = *info;
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (line.empty() && !id.vendor.empty()) break;  // end of the first block
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view key = trim(line.substr(0, colon));
    const std::string value(trim(line.substr(colon + 1)));
    if (key == "vendor_id") id.vendor = value;
    if (key == "cpu family") id.family = value;
    if (key == "model") id.model = value;
    if (key == "model name") id.name = value;
  }
  return id;
}

// "Node 0 MemTotal:       9529120 kB" -> MB.
int64_t nodeMemoryMb(const FsRoot& fs, const std::string& node) {
  const std::optional<std::string> meminfo =
      fs.read("/sys/devices/system/node/" + node + "/meminfo", 1 << 16);
  if (!meminfo) return -1;
  const size_t at = meminfo->find("MemTotal:");
  if (at == std::string::npos) return -1;
  std::string_view v = trim(std::string_view(*meminfo).substr(at + 9));
  int64_t kb = -1;
  std::from_chars(v.data(), v.data() + v.size(), kb);
  return kb < 0 ? -1 : kb / 1024;
}

}  // namespace

bool cpusFromSysfs(const FsRoot& fs, HostFacts* facts) {
  struct Numa {
    int id;
    std::vector<int> cpus;
    int64_t memoryMb;
  };
  std::vector<Numa> numas;
  for (const std::string& n : fs.list("/sys/devices/system/node")) {
    if (n.rfind("node", 0) != 0 || n.size() < 5) continue;
    const int id = toInt(std::string_view(n).substr(4), -1);
    if (id < 0) continue;
    const std::optional<std::string> list = fs.read("/sys/devices/system/node/" + n + "/cpulist");
    Result<std::vector<int>> cpus = parseCpuList(list.value_or(""));
    if (!cpus.isOk()) continue;
    numas.push_back({id, std::move(cpus).value(), nodeMemoryMb(fs, n)});
  }
  if (numas.empty()) {  // a kernel without NUMA: one node holding every online CPU
    Result<std::vector<int>> cpus =
        parseCpuList(fs.read("/sys/devices/system/cpu/online").value_or(""));
    if (!cpus.isOk() || cpus->empty()) {
      facts->notes.push_back("sysfs: no NUMA nodes and no online CPUs under " +
                             (fs.isRealRoot() ? std::string("/sys") : fs.root() + "/sys"));
      return false;
    }
    numas.push_back({0, std::move(cpus).value(), -1});
  }
  const CpuIdentity ident = cpuIdentity(fs);
  // A fake tree names its own architecture, so that its dump does not depend on this machine.
  const std::string arch =
      fs.isRealRoot() ? machineArch() : fs.read("/proc/sys/kernel/arch", 64).value_or("x86_64");
  size_t pus = 0;
  for (const Numa& numa : numas) {
    std::set<std::pair<int, int>> cores;  // (package, core id)
    int package = -1;
    for (int c : numa.cpus) {
      const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(c) + "/topology/";
      const int pkg = toInt(fs.read(base + "physical_package_id").value_or("0"), 0);
      const int core = toInt(fs.read(base + "core_id").value_or(std::to_string(c)), c);
      if (package < 0) package = pkg;
      cores.insert({pkg, core});
    }
    pus += numa.cpus.size();
    XmlNode cpu("cpu");
    cpu.set("numaid", std::to_string(numa.id));
    cpu.set("affinity", formatCpuMask(numa.cpus));
    cpu.set("arch", arch);
    if (!ident.vendor.empty()) cpu.set("vendor", ident.vendor);
    if (!ident.family.empty()) cpu.set("familyid", ident.family);
    if (!ident.model.empty()) cpu.set("modelid", ident.model);
    cpu.set("package", std::to_string(package < 0 ? 0 : package));
    cpu.set("cores", std::to_string(cores.size()));
    if (numa.memoryMb >= 0) cpu.set("memory_mb", std::to_string(numa.memoryMb));
    if (!ident.name.empty()) cpu.set("model", ident.name);
    facts->cpus.push_back(std::move(cpu));
  }
  facts->notes.push_back("sysfs: " + std::to_string(numas.size()) + " NUMA node(s), " +
                         std::to_string(pus) + " PU(s)");
  return true;
}

}  // namespace loom::topo::detail
