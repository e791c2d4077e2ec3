// Synthetic topologies: machines that are not here, built in code so that they can be
// planned, simulated and tested (the fixtures under tests/fixtures/topology are their dumps).
//
//   pcie-4gpu   a 2-socket PCIe server: 4 GPUs without NVLink and 2 x 200 Gb/s NICs. Socket 0
//               has one switch holding GPU0, GPU1 and NIC0; socket 1 has a two-level switch
//               holding GPU2 alone and GPU3 with NIC1. So it shows PIX, PXB and SYS paths.
//   dgx-h100    a DGX-H100-like server: 2 sockets, 8 H100 SXM GPUs on four NVSwitch chips (18
//               NVLinks each: NV18 between every pair), 8 x 400 Gb/s InfiniBand NICs. Each
//               socket has two PCIe switches; each of those has two leaf switches, each holding
//               one GPU and its NIC (GPU-NIC: PIX to its own NIC, PXB to its neighbour's, PHB
//               within the socket, SYS across).
//   a cluster   N dgx-h100 hosts on a rail-optimised fat tree (cluster.h).
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "topology/xml.h"

namespace loom::topo {

XmlNode makePcieServer(const std::string& hostName);
XmlNode makeDgxH100(const std::string& hostName);

// The names accepted by makeSynthetic: "pcie-4gpu", "dgx-h100".
std::vector<std::string> syntheticNames();
// InvalidArgument listing the names for an unknown one.
Result<XmlNode> makeSynthetic(const std::string& kind, const std::string& hostName);

}  // namespace loom::topo
