// loom-sim as users run it (tools/loom_sim.cpp): fixtures, the generated cluster, --explain,
// --timeline, usage errors, and one run at 16,384 ranks (no timed assertion: DESIGN.md section 8
// keeps speed out of tests; docs/SIM.md reports the time).
#include <gtest/gtest.h>

#include <string>

#include "subprocess.h"

namespace loom::test {
namespace {

ProcessResult sim(const std::vector<std::string>& args, double deadlineSec = 120) {
  std::vector<std::string> argv{LOOM_SIM_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  return runProcess(argv, {}, deadlineSec);
}

std::string fixture(const std::string& name) {
  return std::string(LOOM_TOPO_FIXTURES) + "/" + name;
}

// The table rows (lines that do not start with '#').
std::vector<std::string> rows(const std::string& out) {
  std::vector<std::string> lines;
  size_t at = 0;
  while (at < out.size()) {
    const size_t eol = out.find('\n', at);
    const std::string line =
        out.substr(at, eol == std::string::npos ? std::string::npos : eol - at);
    if (!line.empty() && line[0] != '#' && line.find("float") != std::string::npos)
      lines.push_back(line);
    if (eol == std::string::npos) break;
    at = eol + 1;
  }
  return lines;
}

TEST(LoomSim, TableOnTheDgxFixtureHasOneRowPerSize) {
  ProcessResult r = sim({"--topo", fixture("dgx-h100.xml"), "-b", "1K", "-e", "1M", "-f", "4"});
  ASSERT_EQ(r.exitCode, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("allreduce on 8 ranks"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("busbw"), std::string::npos) << r.out;
  EXPECT_EQ(rows(r.out).size(), 6u) << r.out;  // 1K 4K 16K 64K 256K 1M
  EXPECT_NE(r.out.find("exact"), std::string::npos) << r.out;
}

TEST(LoomSim, ForcedAlgorithmAndAllAlgorithms) {
  ProcessResult ring =
      sim({"--topo", fixture("dgx-h100.xml"), "-b", "1M", "-e", "1M", "--algo", "ring"});
  ASSERT_EQ(ring.exitCode, 0) << ring.err;
  ASSERT_EQ(rows(ring.out).size(), 1u) << ring.out;
  EXPECT_NE(rows(ring.out)[0].find(" ring "), std::string::npos) << ring.out;
  ProcessResult all =
      sim({"--topo", fixture("dgx-h100.xml"), "-b", "64K", "-e", "64K", "--algo", "all"});
  ASSERT_EQ(all.exitCode, 0) << all.err;
  EXPECT_GE(rows(all.out).size(), 4u) << all.out;
  EXPECT_NE(all.out.find("double_binary_tree"), std::string::npos) << all.out;
}

TEST(LoomSim, ExplainListsEveryRanksSteps) {
  ProcessResult r = sim({"--synthetic", "dgx-h100", "--nranks", "4", "--algo", "ring", "-b", "64",
                         "-e", "64", "--explain"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_NE(r.out.find("schedule: allreduce:ring, 4 ranks"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rank 3 (dgx-h100 GPU3)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("r0 c0    0: send"), std::string::npos) << r.out;
}

TEST(LoomSim, ExplainSummarisesManyRanks) {
  ProcessResult r = sim({"--dgx-h100", "8", "--algo", "ring", "-b", "1M", "-e", "1M", "--explain"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_NE(r.out.find("listing ranks 0-6 and 63 of 64"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("more steps ..."), std::string::npos) << r.out;
}

TEST(LoomSim, TimelineWritesAnSvg) {
  const std::string dir = makeTempDir();
  const std::string path = dir + "/ring.svg";
  ProcessResult r =
      sim({"--dgx-h100", "2", "--algo", "ring", "-b", "4M", "-e", "4M", "--timeline", path});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  const std::string svg = readFile(path);
  removeTree(dir);
  ASSERT_GT(svg.size(), 1000u);
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(svg.find("ranks 0-15 of 16 shown"), std::string::npos);
  EXPECT_NE(svg.find("NET"), std::string::npos);  // a NIC port among the busiest links
  // Every element that opens also closes (a cheap well-formedness check).
  size_t opens = 0, closes = 0;
  for (size_t at = svg.find("<rect"); at != std::string::npos; at = svg.find("<rect", at + 1))
    ++opens;
  for (size_t at = svg.find("/>"); at != std::string::npos; at = svg.find("/>", at + 1))
    ++closes;
  for (size_t at = svg.find("</rect>"); at != std::string::npos; at = svg.find("</rect>", at + 1))
    ++closes;
  EXPECT_LE(opens, closes);
  for (size_t at = svg.find('&'); at != std::string::npos; at = svg.find('&', at + 1)) {
    const std::string entity = svg.substr(at, 5);
    EXPECT_TRUE(entity.rfind("&lt;", 0) == 0 || entity.rfind("&gt;", 0) == 0 ||
                entity.rfind("&amp;", 0) == 0)
        << "bare '&' at " << at << ": " << svg.substr(at, 20);
  }
}

TEST(LoomSim, HostWithoutGpusUsesTheCostModel) {
  ProcessResult r =
      sim({"--topo", fixture("vm-2core.xml"), "--nranks", "4", "-b", "1K", "-e", "1K"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_NE(r.out.find("without GPUs"), std::string::npos) << r.out;
  EXPECT_EQ(rows(r.out).size(), 1u) << r.out;
}

TEST(LoomSim, BadUsageExitsTwo) {
  EXPECT_EQ(sim({}).exitCode, 2);
  EXPECT_EQ(sim({"--dgx-h100", "1", "-c", "allsum"}).exitCode, 2);
  EXPECT_EQ(sim({"--dgx-h100", "1", "-b", "1M", "-e", "1K"}).exitCode, 2);
  ProcessResult tooMany = sim({"--synthetic", "dgx-h100", "--nranks", "9"});
  EXPECT_EQ(tooMany.exitCode, 1);
  EXPECT_NE(tooMany.err.find("cannot hold 9 ranks"), std::string::npos) << tooMany.err;
}

TEST(LoomSim, SixteenThousandRanksRun) {
  ProcessResult r = sim({"--dgx-h100", "2048", "-b", "1M", "-e", "1M"}, 600);
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_NE(r.out.find("allreduce on 16384 ranks"), std::string::npos) << r.out;
  EXPECT_EQ(rows(r.out).size(), 1u) << r.out;
  ProcessResult ring = sim({"--dgx-h100", "2048", "--algo", "ring", "-b", "64M", "-e", "64M"}, 600);
  ASSERT_EQ(ring.exitCode, 0) << ring.err;
  EXPECT_NE(ring.out.find("rounds"), std::string::npos) << ring.out;
}

}  // namespace
}  // namespace loom::test
