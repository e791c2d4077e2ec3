// Discovery (topology/discover.h) against the fake sysfs trees that make_sysfs.py builds, and
// on this machine; LOOM_TOPO_FILE and LOOM_TOPO_DUMP_FILE through localSystem.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "topology/discover.h"
#include "topology/discover_sources.h"
#include "topology/fsroot.h"

namespace loom::topo {
namespace {

std::string readText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool hasNote(const Discovery& d, const std::string& text) {
  for (const std::string& n : d.notes)
    if (n.find(text) != std::string::npos) return true;
  return false;
}

Discovery discoverFake(const std::string& tree) {
  DiscoverOptions o;
  o.fsRoot = std::string(LOOM_TOPO_SYSFS) + "/" + tree;
  o.nvmlLibrary = "";
  Result<Discovery> d = discoverHost(o);
  EXPECT_TRUE(d.isOk()) << d.status().toString();
  return std::move(d).value();
}

TEST(TopoDiscover, FakeVmTreeGivesTheVmFixture) {
  const Discovery d = discoverFake("vm-2core");
  EXPECT_EQ(writeXml(d.system), readText(std::string(LOOM_TOPO_FIXTURES) + "/vm-2core.xml"));
  EXPECT_TRUE(hasNote(d, "InfiniBand: none")) << d.notes.size();
  EXPECT_TRUE(hasNote(d, "NVML: not used"));
  EXPECT_TRUE(hasNote(d, "3 virtual interface(s) not shown"));
}

TEST(TopoDiscover, FakeServerTreeFindsSwitchesGpusAndHcas) {
  const Discovery d = discoverFake("pcie-2s-4gpu");
  EXPECT_EQ(writeXml(d.system),
            readText(std::string(LOOM_TOPO_FIXTURES) + "/pcie-2s-4gpu-discovered.xml"));
  EXPECT_TRUE(hasNote(d, "InfiniBand: 2 device(s), 2 port(s)"));
  EXPECT_TRUE(hasNote(d, "4 NVIDIA GPU(s) without NVML"));
}

TEST(TopoDiscover, MissingNvmlIsANoteNotAnError) {
  DiscoverOptions o;
  o.fsRoot = std::string(LOOM_TOPO_SYSFS) + "/vm-2core";
  o.nvmlLibrary = "libloom-no-such-nvml.so.1";
  Result<Discovery> d = discoverHost(o);
  ASSERT_TRUE(d.isOk()) << d.status().toString();
  EXPECT_TRUE(hasNote(*d, "not found (no NVIDIA driver)"));
}

TEST(TopoDiscover, ARootWithoutCpusIsAnError) {
  char dir[] = "/tmp/loom-topo-empty-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  DiscoverOptions o;
  o.fsRoot = dir;
  o.nvmlLibrary = "";
  Result<Discovery> d = discoverHost(o);
  EXPECT_FALSE(d.isOk());
  rmdir(dir);
}

TEST(TopoDiscover, FsRootStaysInsideItsTreeAndBoundsReads) {
  char dir[] = "/tmp/loom-topo-root-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string root = dir;
  ASSERT_EQ(symlink("/etc", (root + "/out").c_str()), 0);
  { std::ofstream(root + "/big") << std::string(100, 'x') << "\n"; }
  const FsRoot fs(root);
  EXPECT_FALSE(fs.resolve("/out").has_value());
  EXPECT_EQ(fs.read("/big", 200)->size(), 100u);
  EXPECT_FALSE(fs.read("/big", 50).has_value());
  EXPECT_FALSE(fs.read("/missing").has_value());
  EXPECT_EQ(fs.list("/"), (std::vector<std::string>{"big", "out"}));
  unlink((root + "/out").c_str());
  unlink((root + "/big").c_str());
  rmdir(dir);
}

TEST(TopoDiscover, NormalizesBusIds) {
  EXPECT_EQ(detail::normalizeBusId("00000000:1B:00.0"), "0000:1b:00.0");
  EXPECT_EQ(detail::normalizeBusId("0000:00:03.0"), "0000:00:03.0");
  EXPECT_EQ(detail::normalizeBusId("00010000:00:03.0"), "");
  EXPECT_EQ(detail::normalizeBusId("virtio2"), "");
  EXPECT_EQ(detail::normalizeBusId("pci0000:00"), "");
}

TEST(TopoDiscover, ThisMachineHasCpusAndSaysWhatIsMissing) {
  Result<Discovery> d = discoverHost(DiscoverOptions{});
  ASSERT_TRUE(d.isOk()) << d.status().toString();
  Result<System> s = System::fromXml(d->system);
  ASSERT_TRUE(s.isOk()) << s.status().toString();
  size_t pus = 0;
  for (int c : s->nodesOf(NodeType::kCpu))
    pus += s->node(c).cpus.size();
  EXPECT_GE(pus, 1u);
  EXPECT_TRUE(hasNote(*d, "NVML"));
  EXPECT_TRUE(hasNote(*d, "InfiniBand"));
}

TEST(TopoDiscover, LocalSystemLoadsTopoFileAndDumps) {
  Config config;
  config.topoFile = std::string(LOOM_TOPO_FIXTURES) + "/dgx-h100.xml";
  const std::string dump = ::testing::TempDir() + "/loom-topo-dump-%p.xml";
  config.topoDumpFile = dump;
  Result<std::shared_ptr<const System>> s = localSystem(config);
  ASSERT_TRUE(s.isOk()) << s.status().toString();
  EXPECT_EQ((*s)->count(NodeType::kGpu), 8);
  Result<std::shared_ptr<const System>> again = localSystem(config);
  ASSERT_TRUE(again.isOk());
  EXPECT_EQ(s->get(), again->get());  // cached per process
  const std::string written = expandTopoPath(dump);
  EXPECT_NE(written.find(std::to_string(getpid())), std::string::npos);
  EXPECT_EQ(readText(written), readText(config.topoFile));
  unlink(written.c_str());

  config.topoFile = "/nonexistent/loom-topo.xml";
  config.topoDumpFile = "";
  Result<std::shared_ptr<const System>> bad = localSystem(config);
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().toString().find("LOOM_TOPO_FILE"), std::string::npos)
      << bad.status().toString();
}

}  // namespace
}  // namespace loom::topo
