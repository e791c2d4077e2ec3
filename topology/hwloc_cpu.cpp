// CPU side of discovery from hwloc: NUMA nodes with their PUs, cores, package, memory and CPU
// identity, plus the NUMA locality of every PCI device (which sysfs often reports as -1 in
// virtual machines). Compiled to a stub that reports "not built in" without libhwloc.
#include "loom_features.h"
#include "topology/cpuset.h"
#include "topology/discover_sources.h"

#if LOOM_HAVE_HWLOC
#include <hwloc.h>

#include <cstdio>
#endif

namespace loom::topo::detail {

#if LOOM_HAVE_HWLOC

namespace {

std::vector<int> cpusOf(hwloc_const_bitmap_t set) {
  std::vector<int> cpus;
  for (int i = hwloc_bitmap_first(set); i >= 0; i = hwloc_bitmap_next(set, i)) {
    if (i >= kMaxCpus) break;
    cpus.push_back(i);
  }
  return cpus;
}

std::string info(hwloc_obj_t obj, const char* name) {
  const char* v = obj ? hwloc_obj_get_info_by_name(obj, name) : nullptr;
  std::string s = v ? v : "";
  while (!s.empty() && s.back() == ' ')
    s.pop_back();
  return s;
}

// Owns a loaded topology.
class Topology {
 public:
  Topology() {
    if (hwloc_topology_init(&t_) != 0) return;
    // The linux backend finds PCI devices in sysfs by itself. The plugins add nothing loom
    // uses: "pci" (libpciaccess) leaves 1016 bytes allocated on every load (LeakSanitizer
    // reports it from the unloaded plugin), "opencl" initialises an OpenCL ICD loader and "gl"
    // probes X displays. Blacklisting an absent component is a no-op.
    for (const char* plugin : {"pci", "opencl", "gl"})
      hwloc_topology_set_components(t_, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, plugin);
    hwloc_topology_set_io_types_filter(t_, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
    loaded_ = hwloc_topology_load(t_) == 0;
  }
  ~Topology() {
    if (t_) hwloc_topology_destroy(t_);
  }
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;
  bool loaded() const { return loaded_; }
  hwloc_topology_t get() const { return t_; }

 private:
  hwloc_topology_t t_ = nullptr;
  bool loaded_ = false;
};

XmlNode cpuElement(hwloc_topology_t t, hwloc_obj_t numa) {
  hwloc_obj_t pkg = hwloc_get_ancestor_obj_by_type(t, HWLOC_OBJ_PACKAGE, numa);
  if (pkg == nullptr) pkg = hwloc_get_obj_by_type(t, HWLOC_OBJ_PACKAGE, 0);
  XmlNode cpu("cpu");
  cpu.set("numaid", std::to_string(numa->os_index));
  cpu.set("affinity", formatCpuMask(cpusOf(numa->cpuset)));
  cpu.set("arch", machineArch());
  if (std::string v = info(pkg, "CPUVendor"); !v.empty()) cpu.set("vendor", v);
  if (std::string v = info(pkg, "CPUFamilyNumber"); !v.empty()) cpu.set("familyid", v);
  if (std::string v = info(pkg, "CPUModelNumber"); !v.empty()) cpu.set("modelid", v);
  cpu.set("package", std::to_string(pkg ? pkg->os_index : 0));
  cpu.set("cores",
          std::to_string(hwloc_get_nbobjs_inside_cpuset_by_type(t, numa->cpuset, HWLOC_OBJ_CORE)));
  cpu.set("memory_mb", std::to_string(numa->attr->numanode.local_memory >> 20));
  if (std::string v = info(pkg, "CPUModel"); !v.empty()) cpu.set("model", v);
  return cpu;
}

}  // namespace

bool cpusFromHwloc(HostFacts* facts) {
  Topology topo;
  if (!topo.loaded()) {
    facts->notes.push_back("hwloc: topology load failed; CPU topology from sysfs");
    return false;
  }
  hwloc_topology_t t = topo.get();
  const int nnuma = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
  std::vector<std::pair<int, hwloc_obj_t>> numas;
  for (int i = 0; i < nnuma; ++i) {
    hwloc_obj_t numa = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, static_cast<unsigned>(i));
    if (numa && numa->cpuset && !hwloc_bitmap_iszero(numa->cpuset))  // skip CPU-less (HBM, CXL)
      numas.emplace_back(static_cast<int>(numa->os_index), numa);
  }
  if (numas.empty()) {
    facts->notes.push_back("hwloc: no NUMA node with CPUs; CPU topology from sysfs");
    return false;
  }
  for (auto& [id, numa] : numas)
    facts->cpus.push_back(cpuElement(t, numa));
  for (hwloc_obj_t dev = hwloc_get_next_pcidev(t, nullptr); dev;
       dev = hwloc_get_next_pcidev(t, dev)) {
    hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(t, dev);
    if (anc == nullptr || anc->cpuset == nullptr) continue;
    for (auto& [id, numa] : numas) {
      if (!hwloc_bitmap_intersects(anc->cpuset, numa->cpuset)) continue;
      char bus[16];
      std::snprintf(bus, sizeof(bus), "%04x:%02x:%02x.%01x", dev->attr->pcidev.domain,
                    dev->attr->pcidev.bus, dev->attr->pcidev.dev, dev->attr->pcidev.func);
      facts->numaOfPci.emplace(bus, id);
      break;
    }
  }
  const unsigned v = hwloc_get_api_version();
  facts->notes.push_back("hwloc " + std::to_string(v >> 16) + "." +
                         std::to_string((v >> 8) & 0xff) + "." + std::to_string(v & 0xff) + ": " +
                         std::to_string(hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PACKAGE)) +
                         " package(s), " + std::to_string(numas.size()) + " NUMA node(s), " +
                         std::to_string(hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE)) +
                         " core(s), " + std::to_string(hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU)) +
                         " PU(s)");
  return true;
}

#else

bool cpusFromHwloc(HostFacts* facts) {
  facts->notes.push_back(
      "hwloc: not built in (libhwloc-dev was not found); CPU topology from sysfs");
  return false;
}

#endif

}  // namespace loom::topo::detail
