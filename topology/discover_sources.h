// The discovery sources (discover.h), as steps that fill a HostFacts. Internal to the layer;
// tests use them through discoverHost with a fake root or a fake NVML library.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "topology/fsroot.h"
#include "topology/xml.h"

namespace loom::topo::detail {

struct HostFacts {
  std::vector<XmlNode> cpus;                         // <cpu> elements, by NUMA id
  std::map<std::string, int> numaOfPci;              // bus id -> NUMA id (hwloc's locality)
  std::map<std::string, std::vector<XmlNode>> nets;  // bus id -> <net> elements of its <nic>
  std::map<std::string, XmlNode> gpus;               // bus id -> <gpu> element (NVML)
  std::vector<std::string> notes;
};

// Each returns false (with a note) when its source is unavailable.
bool cpusFromHwloc(HostFacts* facts);
bool cpusFromSysfs(const FsRoot& fs, HostFacts* facts);
void nicsFromSysfs(const FsRoot& fs, HostFacts* facts);
void gpusFromNvml(const std::string& library, HostFacts* facts);
// Builds the PCI tree under facts->cpus, attaching nets and gpus to their devices.
void pciTreeFromSysfs(const FsRoot& fs, HostFacts* facts);

// "0000:18:00.0" from "00000000:18:00.0" (NVML) or "0000:18:00.0"; lower case. "" if the text
// is no PCI bus id.
std::string normalizeBusId(const std::string& text);
// The machine name (uname) for <cpu arch>.
std::string machineArch();

}  // namespace loom::topo::detail
