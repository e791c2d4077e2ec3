// Discovery of the local host's topology, and the per-process topology a communicator uses.
//
// Sources, each optional (a missing one is reported in Discovery::notes and logged at INFO
// under TOPO, never fatal):
//   hwloc  packages, NUMA nodes, cores, PUs, CPU identity, and which NUMA node each PCI device
//          is local to (built in when libhwloc was found; used only on the real root);
//   sysfs  the same CPU facts when hwloc is absent or the root is a fake tree; the PCI tree
//          (bridges, class, vendor/device ids, PCIe generation and width, NUMA node);
//          /sys/class/infiniband (HCAs: ports, state, rate, GUID, netdev) and /sys/class/net
//          (Ethernet netdevs with a PCI device: speed, state, MAC);
//   NVML   GPUs, their compute capability, NVLinks and NVLink peers (GPU or NVSwitch), loaded
//          with dlopen at run time, so loom runs where no NVIDIA driver is installed.
// The result is the XML tree described in xml.h (NCCL's NCCL_TOPO_DUMP_FILE shape).
//
// The PCI tree follows NCCL: a device hangs under its PCIe switch, and a switch is named by its
// upstream port (the downstream port a device sits on is skipped), so "one switch" is one <pci>
// level and two devices under it are PIX. Only devices that matter are listed (storage,
// network, display/3D, accelerators, NVSwitches); bridges appear as the levels above them.
//
// Thread-safety: discoverHost may run on any thread (NVML calls are serialised inside);
// localSystem is thread-safe and discovers once per process and (file, root).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/config.h"
#include "base/status.h"
#include "topology/system.h"
#include "topology/xml.h"

namespace loom::topo {

struct DiscoverOptions {
  std::string fsRoot = "/";                       // sysfs/procfs root (a fake tree in tests)
  bool useHwloc = true;                           // used only when built in and fsRoot is "/"
  std::string nvmlLibrary = "libnvidia-ml.so.1";  // "" skips NVML
  std::string hostName;                           // <system name>; "" = this host's name
};

struct Discovery {
  XmlNode system;                  // <system version="1" name="...">
  std::vector<std::string> notes;  // one line per source: what it found, or why it is missing
};

// Never fails because a source is missing; an error means the result would be wrong (e.g. no
// CPU could be found at all).
Result<Discovery> discoverHost(const DiscoverOptions& options);

// The host topology this process's communicators use: loaded from LOOM_TOPO_FILE when set (a
// file that cannot be read or parsed is an error: the operator asked for it), otherwise
// discovered. Computed once per process and cached; when LOOM_TOPO_DUMP_FILE is set the tree is
// written there once (%h host, %p pid), and a failure to write is logged, not fatal.
Result<std::shared_ptr<const System>> localSystem(const Config& config);

// "%h" -> host name, "%p" -> pid (as LOOM_DEBUG_FILE).
std::string expandTopoPath(const std::string& pattern);

}  // namespace loom::topo
