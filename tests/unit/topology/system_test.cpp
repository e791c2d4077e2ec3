// The graph and its path classes (topology/system.h) on every fixture under
// tests/fixtures/topology, the synthetic generators that wrote them, and the cluster model.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "topology/cluster.h"
#include "topology/synthetic.h"
#include "topology/system.h"

namespace loom::topo {
namespace {

std::string fixturePath(const std::string& name) {
  return std::string(LOOM_TOPO_FIXTURES) + "/" + name;
}

std::string readText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

System load(const std::string& name) {
  Result<XmlNode> tree = loadXmlFile(fixturePath(name));
  EXPECT_TRUE(tree.isOk()) << tree.status().toString();
  Result<System> sys = System::fromXml(std::move(tree).value());
  EXPECT_TRUE(sys.isOk()) << sys.status().toString();
  return std::move(sys).value();
}

// nvidia-smi-style cells for GPUs then NICs, one string per row ("X NV18 PIX ...").
std::vector<std::string> matrix(const System& s) {
  std::vector<int> devs = s.nodesOf(NodeType::kGpu);
  for (int n : s.nodesOf(NodeType::kNic))
    devs.push_back(n);
  std::vector<std::string> rows;
  for (int a : devs) {
    std::string row;
    for (int b : devs)
      row += (row.empty() ? "" : " ") + matrixCell(s.path(a, b));
    rows.push_back(row);
  }
  return rows;
}

int gpu(const System& s, int i) {
  return s.nodesOf(NodeType::kGpu)[static_cast<size_t>(i)];
}
int nic(const System& s, int i) {
  return s.nodesOf(NodeType::kNic)[static_cast<size_t>(i)];
}

const char* kFixtures[] = {"vm-2core.xml",
                           "pcie-4gpu.xml",
                           "dgx-h100.xml",
                           "pcie-2s-4gpu-discovered.xml",
                           "cluster-2x-dgx-h100.xml",
                           "nccl-4gpu-nvlink-ring.xml"};

TEST(TopoFixtures, DumpLoadDumpIsIdentical) {
  for (const char* name : kFixtures) {
    const std::string text = readText(fixturePath(name));
    Result<XmlNode> first = parseXml(text, {}, name);
    ASSERT_TRUE(first.isOk()) << first.status().toString();
    const std::string dump = writeXml(*first);
    Result<XmlNode> again = parseXml(dump, {}, name);
    ASSERT_TRUE(again.isOk()) << again.status().toString();
    EXPECT_EQ(writeXml(*again), dump) << name;
    // Files loom wrote are already in the canonical form (the NCCL one has a prolog).
    if (std::string(name).rfind("nccl-", 0) != 0) {
      EXPECT_EQ(dump, text) << name;
    }
  }
}

TEST(TopoFixtures, SyntheticGeneratorsWroteTheFixtures) {
  EXPECT_EQ(writeXml(makePcieServer("pcie-4gpu")), readText(fixturePath("pcie-4gpu.xml")));
  EXPECT_EQ(writeXml(makeDgxH100("dgx-h100")), readText(fixturePath("dgx-h100.xml")));
  Result<XmlNode> cluster = makeRailCluster(2);
  ASSERT_TRUE(cluster.isOk());
  EXPECT_EQ(writeXml(*cluster), readText(fixturePath("cluster-2x-dgx-h100.xml")));
  EXPECT_FALSE(makeSynthetic("dgx-z", "x").isOk());
}

TEST(TopoFixtures, VmHasOneNumaNodeTwoPusAndOnlyAnEthernetNic) {
  const System s = load("vm-2core.xml");
  EXPECT_EQ(s.hostName(), "vm");
  ASSERT_EQ(s.count(NodeType::kCpu), 1);
  EXPECT_EQ(s.node(s.nodesOf(NodeType::kCpu)[0]).cpus, (std::vector<int>{0, 1}));
  EXPECT_EQ(s.count(NodeType::kGpu), 0);
  EXPECT_EQ(s.count(NodeType::kNvSwitch), 0);
  ASSERT_EQ(s.count(NodeType::kNic), 1);
  EXPECT_EQ(s.node(nic(s, 0)).model, "eth0");
  const Path& p = s.path(nic(s, 0), s.nodesOf(NodeType::kCpu)[0]);
  EXPECT_EQ(p.type, PathType::kPhb);
}

TEST(TopoFixtures, PcieServerMatrix) {
  for (const char* name : {"pcie-4gpu.xml", "pcie-2s-4gpu-discovered.xml"}) {
    const System s = load(name);
    const std::vector<std::string> expected = {"X PIX SYS SYS PIX SYS", "PIX X SYS SYS PIX SYS",
                                               "SYS SYS X PXB SYS PXB", "SYS SYS PXB X SYS PIX",
                                               "PIX PIX SYS SYS X SYS", "SYS SYS PXB PIX SYS X"};
    EXPECT_EQ(matrix(s), expected) << name;
    // Across sockets the bottleneck is the CPU interconnect (Ice Lake: 10 GB/s), within a
    // switch the PCIe Gen4 x16 link (24 GB/s).
    EXPECT_DOUBLE_EQ(s.path(gpu(s, 0), gpu(s, 2)).bandwidthGBs, 10.0);
    EXPECT_DOUBLE_EQ(s.path(gpu(s, 0), gpu(s, 1)).bandwidthGBs, 24.0);
    EXPECT_EQ(s.node(gpu(s, 2)).numa, 1);
  }
}

TEST(TopoFixtures, DgxH100Matrix) {
  const System s = load("dgx-h100.xml");
  ASSERT_EQ(s.count(NodeType::kGpu), 8);
  ASSERT_EQ(s.count(NodeType::kNic), 8);
  EXPECT_EQ(s.count(NodeType::kNvSwitch), 1);
  for (int a = 0; a < 8; ++a) {
    for (int b = 0; b < 8; ++b) {
      EXPECT_EQ(matrixCell(s.path(gpu(s, a), gpu(s, b))), a == b ? "X" : "NV18") << a << "," << b;
      const char* gn = a == b ? "PIX" : (a ^ 1) == b ? "PXB" : a / 4 == b / 4 ? "PHB" : "SYS";
      EXPECT_EQ(matrixCell(s.path(gpu(s, a), nic(s, b))), gn) << "GPU" << a << " NIC" << b;
    }
  }
  const Path& nv = s.path(gpu(s, 0), gpu(s, 7));
  EXPECT_EQ(nv.nvlinks, 18);
  EXPECT_NEAR(nv.bandwidthGBs, 18 * 20.6, 1e-9);
  EXPECT_EQ(nv.hops, 2);                                              // GPU -> NVSwitch -> GPU
  EXPECT_DOUBLE_EQ(s.path(gpu(s, 0), nic(s, 0)).bandwidthGBs, 48.0);  // PCIe Gen5 x16
  // Every port is a 400 Gb/s NET node behind its NIC.
  ASSERT_EQ(s.count(NodeType::kNet), 8);
  for (int n : s.nodesOf(NodeType::kNet)) {
    ASSERT_EQ(s.node(n).links.size(), 1u);
    EXPECT_DOUBLE_EQ(s.node(n).links[0].bandwidthGBs, 50.0);
  }
}

TEST(TopoFixtures, NcclDumpWithNvlinkRingHasNvbPaths) {
  const System s = load("nccl-4gpu-nvlink-ring.xml");
  const std::vector<std::string> expected = {"X NV2 NVB NV1 PIX", "NV2 X NV2 NVB PIX",
                                             "NVB NV2 X NV2 PHB", "NV1 NVB NV2 X PHB",
                                             "PIX PIX PHB PHB X"};
  EXPECT_EQ(matrix(s), expected);
  EXPECT_EQ(s.path(gpu(s, 0), gpu(s, 2)).hops, 2);
}

TEST(TopoSystem, RejectsTreesThatAreNoTopology) {
  const char* bad[] = {
      "<system version=\"2\"><cpu numaid=\"0\"/></system>",
      "<system version=\"1\"/>",
      "<system version=\"1\"><cpu numaid=\"0\"/><cpu numaid=\"0\"/></system>",
      "<system version=\"1\"><cpu numaid=\"x\"/></system>",
      "<system version=\"1\"><cpu numaid=\"0\" affinity=\"zz\"/></system>",
      "<system version=\"1\"><cpu numaid=\"0\"><pci/></cpu></system>",
      "<system version=\"1\"><cpu numaid=\"0\"><pci busid=\"0000:01:00.0\"><gpu/></pci>"
      "</cpu></system>",
      "<system version=\"1\"><cpu numaid=\"0\"><pci busid=\"0000:01:00.0\"><gpu dev=\"0\">"
      "<nvlink target=\"x\" count=\"900\"/></gpu></pci></cpu></system>",
      "<system version=\"1\"><cpu numaid=\"0\"><nic><net/></nic></cpu></system>"};
  for (const char* text : bad) {
    Result<XmlNode> tree = parseXml(text);
    ASSERT_TRUE(tree.isOk()) << text;
    Result<System> s = System::fromXml(*tree);
    EXPECT_FALSE(s.isOk()) << text;
  }
}

TEST(TopoSystem, VocabularyRoundTrips) {
  for (int i = 0; i <= static_cast<int>(PathType::kDis); ++i)
    EXPECT_EQ(parsePathType(pathTypeName(static_cast<PathType>(i))), static_cast<PathType>(i));
  EXPECT_FALSE(parsePathType("XYZ").has_value());
  EXPECT_DOUBLE_EQ(pciBandwidthGBs("8.0 GT/s PCIe", 16), 12.0);
  EXPECT_DOUBLE_EQ(pciBandwidthGBs("32.0 GT/s PCIe", 8), 24.0);
  EXPECT_DOUBLE_EQ(nvlinkBandwidthGBs(90), 20.6);
}

TEST(TopoCluster, RailOptimisedFatTreePaths) {
  Result<XmlNode> tree = makeRailCluster(40, 32);
  ASSERT_TRUE(tree.isOk());
  Result<Cluster> c = Cluster::fromXml(*tree);
  ASSERT_TRUE(c.isOk()) << c.status().toString();
  ASSERT_EQ(c->nhosts(), 40);
  const System& h = c->host(0);
  const ClusterDevice g3a{0, gpu(h, 3)}, g3b{1, gpu(h, 3)}, g3far{33, gpu(h, 3)};
  const ClusterDevice g1b{1, gpu(h, 1)};
  EXPECT_EQ(c->railOf(0, gpu(h, 3)), 3);
  EXPECT_EQ(c->switchHops(g3a, g3b), 1);    // same rail, same leaf
  EXPECT_EQ(c->switchHops(g3a, g3far), 3);  // same rail, other leaf group: via the spine
  EXPECT_EQ(c->switchHops(g3a, g1b), 3);    // other rail: via the spine
  const Path p = c->path(g3a, g3b);
  EXPECT_EQ(p.type, PathType::kNet);
  EXPECT_DOUBLE_EQ(p.bandwidthGBs, 48.0);  // the GPU's PCIe Gen5 link, below 400 Gb/s
  EXPECT_LT(p.latencyUs, c->path(g3a, g3far).latencyUs);
  EXPECT_EQ(c->path(g3a, {0, gpu(h, 5)}).type, PathType::kNvl);
  EXPECT_FALSE(makeRailCluster(0).isOk());
  EXPECT_FALSE(Cluster::fromXml(makeDgxH100("x")).isOk());
}

}  // namespace
}  // namespace loom::topo
