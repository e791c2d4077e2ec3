// loom-topo as users run it (tools/loom_topo.cpp): this machine, fixtures, dump/load, JSON,
// --ranks with local processes, and usage errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "subprocess.h"

namespace loom::test {
namespace {

ProcessResult topo(const std::vector<std::string>& args) {
  std::vector<std::string> argv{LOOM_TOPO_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  return runProcess(argv, {{"LOOM_SOCKET_IFNAME", "lo"}, {"LOOM_TIMEOUT_MS", "30000"}}, 60);
}

std::string fixture(const std::string& name) {
  return std::string(LOOM_TOPO_FIXTURES) + "/" + name;
}

TEST(LoomTopo, ShowsThisMachineAndSaysWhatIsAbsent) {
  ProcessResult r = topo({});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_NE(r.out.find("Machine \""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("NUMANode P#"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("NVML"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("InfiniBand"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CPU Affinity"), std::string::npos) << r.out;
}

TEST(LoomTopo, FakeVmTreeSaysNoGpuAndNoInfiniband) {
  ProcessResult r = topo({"--root", std::string(LOOM_TOPO_SYSFS) + "/vm-2core"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_NE(r.out.find("GPUs: none"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("InfiniBand/RDMA ports: none"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("NUMANode P#0 (9305 MB): PUs 0-1, 2 core(s), AMD EPYC"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("PCI 0000:00:03.0 (Ethernet)"), std::string::npos) << r.out;
}

TEST(LoomTopo, MatrixOfTheDgxFixtureLikeNvidiaSmi) {
  ProcessResult r = topo({"--load", fixture("dgx-h100.xml"), "--matrix"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_NE(r.out.find("GPU0  X     NV18  NV18  NV18  NV18  NV18  NV18  NV18  PIX   PXB   PHB   "
                       "PHB   SYS   SYS   SYS   SYS   0-55,112-167        0"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("NIC7: mlx5_7"), std::string::npos) << r.out;
}

TEST(LoomTopo, TreeOfTheDgxFixtureShowsNvlinksAndPorts) {
  ProcessResult r = topo({"--synthetic", "dgx-h100", "--tree"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_NE(r.out.find("GPU7 \"NVIDIA H100 80GB HBM3\" (sm_90)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("NVLink x5 -> 0000:05:00.0 (NVSwitch)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Net \"mlx5_0\" port 1: InfiniBand, ACTIVE, 400 Gb/s"), std::string::npos)
      << r.out;
}

TEST(LoomTopo, DumpLoadDumpIsIdentical) {
  const std::string dir = makeTempDir();
  const std::string a = dir + "/a.xml", b = dir + "/b.xml";
  ProcessResult r1 = topo({"--dump", a});
  ASSERT_EQ(r1.exitCode, 0) << r1.err;
  ProcessResult r2 = topo({"--load", a, "--dump", b});
  ASSERT_EQ(r2.exitCode, 0) << r2.err;
  EXPECT_FALSE(readFile(a).empty());
  EXPECT_EQ(readFile(a), readFile(b));
  ProcessResult r3 = topo({"--load", fixture("nccl-4gpu-nvlink-ring.xml"), "--dump", "-"});
  ASSERT_EQ(r3.exitCode, 0) << r3.err;
  EXPECT_EQ(r3.out.rfind("<system version=\"1\">", 0), 0u) << r3.out;
  removeTree(dir);
}

TEST(LoomTopo, JsonAndCluster) {
  ProcessResult j = topo({"--synthetic", "pcie-4gpu", "--json"});
  ASSERT_EQ(j.exitCode, 0) << j.err;
  EXPECT_EQ(j.out.rfind("{\"tag\": \"system\"", 0), 0u) << j.out;
  ProcessResult c = topo({"--cluster", "64"});
  ASSERT_EQ(c.exitCode, 0) << c.err;
  EXPECT_NE(c.out.find("Cluster of 64 host(s), 1 distinct host shape(s); fabric rail-fat-tree"),
            std::string::npos)
      << c.out;
  EXPECT_NE(c.out.find("64 host(s): node000 .. node063: 8 GPUs, 8 NICs"), std::string::npos)
      << c.out;
  EXPECT_NE(c.out.find("GPU0@host0 -> GPU0@host1: NET"), std::string::npos) << c.out;
  // Host 32 is behind another leaf: leaf-spine-leaf.
  EXPECT_NE(c.out.find("GPU0@host0 -> GPU0@host32: NET, 48.0 GB/s, 6.50 us, 3 switch hop(s)"),
            std::string::npos)
      << c.out;
}

TEST(LoomTopo, LoadsAClusterFileAndGroupsHostsOfOneShape) {
  ProcessResult f = topo({"--load", fixture("cluster-2x-dgx-h100.xml")});
  ASSERT_EQ(f.exitCode, 0) << f.err;
  EXPECT_NE(f.out.find("Cluster of 2 host(s), 1 distinct host shape(s)"), std::string::npos)
      << f.out;
  EXPECT_NE(f.out.find("GPU0@host0 -> GPU0@host1: NET, 48.0 GB/s, 5.50 us, 1 switch hop(s)"),
            std::string::npos)
      << f.out;
  // Two host shapes, three hosts: the DGX twice and the PCIe server once.
  const std::string dir = makeTempDir();
  const std::string mixed = dir + "/mixed.xml";
  {
    std::ofstream out(mixed);
    out << "<cluster version=\"1\" name=\"mixed\">\n"
        << "<fabric type=\"rail-fat-tree\" rails=\"8\" hosts_per_leaf=\"2\" leaves=\"16\" "
           "speed=\"400000\"/>\n"
        << readFile(fixture("dgx-h100.xml")) << readFile(fixture("pcie-4gpu.xml"))
        << readFile(fixture("dgx-h100.xml")) << "</cluster>\n";
  }
  ProcessResult m = topo({"--load", mixed});
  ASSERT_EQ(m.exitCode, 0) << m.err;
  EXPECT_NE(m.out.find("Cluster of 3 host(s), 2 distinct host shape(s)"), std::string::npos)
      << m.out;
  EXPECT_NE(m.out.find("2 host(s): dgx-h100 .. dgx-h100: 8 GPUs, 8 NICs"), std::string::npos)
      << m.out;
  EXPECT_NE(m.out.find("1 host(s): pcie-4gpu: 4 GPUs, 2 NICs"), std::string::npos) << m.out;
  ProcessResult t = topo({"--load", mixed, "--matrix"});
  ASSERT_EQ(t.exitCode, 0) << t.err;
  EXPECT_NE(t.out.find("== dgx-h100 (and 1 more host(s) of the same shape)"), std::string::npos)
      << t.out;
  EXPECT_NE(t.out.find("== pcie-4gpu (and 0 more host(s) of the same shape)"), std::string::npos)
      << t.out;
  ProcessResult d = topo({"--load", mixed, "--dump", "-"});
  ASSERT_EQ(d.exitCode, 0) << d.err;
  EXPECT_EQ(d.out.rfind("<cluster version=\"1\"", 0), 0u) << d.out.substr(0, 200);
  removeTree(dir);
}

TEST(LoomTopo, RanksWithLocalProcesses) {
  ProcessResult r = topo({"--ranks", "-np", "2"});
  ASSERT_EQ(r.exitCode, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("Communicator of 2 rank(s) on 1 host(s)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("r0    X     LOC"), std::string::npos) << r.out;
  ProcessResult t = topo({"--ranks", "-t", "3", "--json"});
  ASSERT_EQ(t.exitCode, 0) << t.err;
  EXPECT_NE(t.out.find("\"nranks\": 3, \"nhosts\": 1"), std::string::npos) << t.out;
}

TEST(LoomTopo, BadUsageAndBadFiles) {
  EXPECT_EQ(topo({"--bogus"}).exitCode, 2);
  EXPECT_EQ(topo({"--load"}).exitCode, 2);
  EXPECT_EQ(topo({"--load", "x", "--synthetic", "dgx-h100"}).exitCode, 2);
  EXPECT_EQ(topo({"-np", "2"}).exitCode, 2);
  ProcessResult missing = topo({"--load", "/nonexistent/topo.xml"});
  EXPECT_EQ(missing.exitCode, 1);
  EXPECT_NE(missing.err.find("/nonexistent/topo.xml"), std::string::npos) << missing.err;
  EXPECT_EQ(topo({"--synthetic", "nope"}).exitCode, 1);
  EXPECT_EQ(topo({"--help"}).exitCode, 0);
}

}  // namespace
}  // namespace loom::test
