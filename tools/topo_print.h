// loom-topo's text renderings of a host topology (topology/system.h):
//   - the tree, indented like `lstopo --of console`: packages, NUMA nodes with their PUs and
//     memory, the PCI tree with switches, GPUs (and their NVLinks), NICs and their ports;
//   - the device matrix, like `nvidia-smi topo -m`: GPU/NIC x GPU/NIC path classes (NV#, NVB,
//     PIX, PXB, PHB, SYS), each device's CPU and NUMA affinity, and the legends.
// Pure functions returning text, so tests compare them directly.
#pragma once

#include <string>

#include "topology/system.h"

namespace loom::tools {

std::string renderTree(const topo::System& system);
std::string renderMatrix(const topo::System& system);
// One line per device class: "GPUs: 8 (NVIDIA H100 80GB HBM3)", "GPUs: none", ...
std::string renderSummary(const topo::System& system);

}  // namespace loom::tools
