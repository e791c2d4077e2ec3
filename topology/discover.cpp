// discoverHost and the per-process topology (discover.h).
#include "topology/discover.h"

#include <unistd.h>

#include <map>
#include <mutex>
#include <set>

#include "base/host.h"
#include "base/log.h"
#include "topology/cpuset.h"
#include "topology/discover_sources.h"

namespace loom::topo {

namespace {

// The last resort on the real root when neither hwloc nor sysfs describes the CPUs (a
// container without /sys): one NUMA node holding every online CPU.
XmlNode fallbackCpu(detail::HostFacts* facts) {
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  std::vector<int> cpus;
  for (long c = 0; c < n && c < kMaxCpus; ++c)
    cpus.push_back(static_cast<int>(c));
  XmlNode cpu("cpu");
  cpu.set("numaid", "0");
  cpu.set("affinity", formatCpuMask(cpus));
  cpu.set("arch", detail::machineArch());
  facts->notes.push_back("CPU: no NUMA information; assuming one NUMA node with " +
                         std::to_string(cpus.size()) + " CPU(s)");
  return cpu;
}

std::string systemName(const FsRoot& fs, const DiscoverOptions& options) {
  if (!options.hostName.empty()) return options.hostName;
  if (fs.isRealRoot()) return hostName();
  return fs.read("/proc/sys/kernel/hostname", 256).value_or("fake");
}

}  // namespace

Result<Discovery> discoverHost(const DiscoverOptions& options) {
  const FsRoot fs(options.fsRoot);
  detail::HostFacts facts;
  bool haveCpus = false;
  if (options.useHwloc && fs.isRealRoot()) haveCpus = detail::cpusFromHwloc(&facts);
  if (!haveCpus) {
    facts.cpus.clear();
    facts.numaOfPci.clear();
    haveCpus = detail::cpusFromSysfs(fs, &facts);
  }
  if (!haveCpus) {
    if (!fs.isRealRoot())
      return invalidArgument("topology root " + fs.root() +
                             " has neither sys/devices/system/node nor sys/devices/system/cpu");
    facts.cpus.push_back(fallbackCpu(&facts));
  }
  detail::nicsFromSysfs(fs, &facts);
  detail::gpusFromNvml(options.nvmlLibrary, &facts);
  detail::pciTreeFromSysfs(fs, &facts);

  Discovery out;
  out.system = XmlNode("system");
  out.system.set("version", "1");
  out.system.set("name", systemName(fs, options));
  for (XmlNode& cpu : facts.cpus)
    out.system.add(std::move(cpu));
  out.notes = std::move(facts.notes);
  return out;
}

std::string expandTopoPath(const std::string& pattern) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '%' && i + 1 < pattern.size() && pattern[i + 1] == 'h') {
      out += hostName();
      ++i;
    } else if (pattern[i] == '%' && i + 1 < pattern.size() && pattern[i + 1] == 'p') {
      out += std::to_string(getpid());
      ++i;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

namespace {

Result<std::shared_ptr<const System>> loadOrDiscover(const Config& config) {
  if (!config.topoFile.empty()) {
    Result<XmlNode> tree = loadXmlFile(config.topoFile);
    if (!tree.isOk()) return tree.status().withContext("LOOM_TOPO_FILE");
    Result<System> sys = System::fromXml(std::move(tree).value());
    if (!sys.isOk()) return sys.status().withContext("LOOM_TOPO_FILE=" + config.topoFile);
    LOOM_LOG(kInfo, kTopo) << "topology of " << sys->hostName() << " loaded from "
                           << config.topoFile;
    return std::make_shared<const System>(std::move(sys).value());
  }
  LOOM_ASSIGN_OR_RETURN(Discovery d, discoverHost(DiscoverOptions{}));
  for (const std::string& note : d.notes)
    LOOM_LOG(kInfo, kTopo) << "topology: " << note;
  LOOM_ASSIGN_OR_RETURN(System sys, System::fromXml(std::move(d.system)));
  return std::make_shared<const System>(std::move(sys));
}

}  // namespace

Result<std::shared_ptr<const System>> localSystem(const Config& config) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const System>> cache;  // by LOOM_TOPO_FILE
  static std::set<std::string> dumped;
  std::lock_guard<std::mutex> lock(mu);
  std::shared_ptr<const System>& sys = cache[config.topoFile];
  if (!sys) {
    Result<std::shared_ptr<const System>> made = loadOrDiscover(config);
    if (!made.isOk()) {
      cache.erase(config.topoFile);
      return made.status();
    }
    sys = std::move(made).value();
  }
  if (!config.topoDumpFile.empty()) {
    const std::string path = expandTopoPath(config.topoDumpFile);
    if (dumped.insert(path).second) {
      if (Status s = saveXmlFile(path, sys->xml()); !s.isOk())
        LOOM_LOG(kWarn, kTopo) << "LOOM_TOPO_DUMP_FILE: " << s.toString();
      else
        LOOM_LOG(kInfo, kTopo) << "topology written to " << path;
    }
  }
  return sys;
}

}  // namespace loom::topo
