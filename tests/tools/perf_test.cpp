// loom-perf's output, read back the way users' scripts read nccl-tests: the table layout byte
// for byte, busbw = algbw x the collective's factor, size/count semantics, #wrong and the exit
// status when a result is corrupted on purpose, every type and op, the JSON file, the peers'
// raw format, and the launchers it runs under (its own -np, loomrun with threads, mpirun,
// torchrun- and srun-style environments).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "collectives.h"
#include "gtest/gtest.h"
#include "json.h"
#include "launch/process_env.h"
#include "perf_table.h"
#include "subprocess.h"
#include "types.h"

namespace loom::test {
namespace {

const std::string kPerf = LOOM_PERF_PATH;
const std::string kLoomrun = LOOMRUN_PATH;
const std::map<std::string, std::string> kEnv = {{"LOOM_SOCKET_IFNAME", "lo"}};

ProcessResult perf(const std::vector<std::string>& args, double deadline = 120) {
  std::vector<std::string> argv{kPerf};
  argv.insert(argv.end(), args.begin(), args.end());
  return runProcess(argv, kEnv, deadline);
}

// nccl-tests' time column (src/common.cu).
std::string timeText(double us) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), us >= 10000.0 ? "%7.0f" : us >= 100.0 ? "%7.1f" : "%7.2f", us);
  return buf;
}

std::string half(const PerfHalf& h) {
  char buf[96];
  if (h.wrong >= 0)
    std::snprintf(buf, sizeof(buf), "  %7s  %6.2f  %6.2f  %5g", timeText(h.timeUs).c_str(), h.algBw,
                  h.busBw, static_cast<double>(h.wrong));
  else
    std::snprintf(buf, sizeof(buf), "  %7s  %6.2f  %6.2f  %5s", timeText(h.timeUs).c_str(), h.algBw,
                  h.busBw, "N/A");
  return buf;
}

// The row as nccl-tests prints it.
std::string rowText(const PerfRow& r) {
  char buf[128];
  char root[16];
  std::snprintf(root, sizeof(root), "%6i", r.root);
  std::snprintf(buf, sizeof(buf), "%12lli  %12lli  %8s  %6s  %6s", r.bytes, r.count, r.type.c_str(),
                r.redop.c_str(), root);
  return buf + half(r.outOfPlace) + half(r.inPlace);
}

std::vector<std::string> expectedHeader() {
  char a[256], b[256], c[256];
  std::snprintf(a, sizeof(a),
                "# %10s  %12s  %8s  %6s  %6s           out-of-place                       "
                "in-place          ",
                "", "", "", "", "");
  std::snprintf(b, sizeof(b), "# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s %6s  %7s  %6s  %6s %6s",
                "size", "count", "type", "redop", "root", "time", "algbw", "busbw", "#wrong",
                "time", "algbw", "busbw", "#wrong");
  std::snprintf(c, sizeof(c), "# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %5s  %7s  %6s  %6s  %5s",
                "(B)", "(elements)", "", "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)", "(GB/s)",
                "(GB/s)", "");
  return {a, b, c};
}

TEST(LoomPerfTable, LayoutMatchesNcclTestsByteForByte) {
  ProcessResult r =
      perf({"-np", "2", "all_reduce", "-b", "8", "-e", "128K", "-f", "4", "-n", "2", "-w", "1"});
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  const auto tables = parsePerfOutput(r.out);
  ASSERT_EQ(tables.size(), 1u) << r.out;
  const PerfTable& t = tables[0];
  EXPECT_TRUE(t.errors.empty()) << t.errors.front();
  EXPECT_EQ(t.headerLines, expectedHeader());
  ASSERT_EQ(t.rows.size(), 8u);  // 8 B .. 128 KiB by 4
  long long size = 8;
  double sum = 0;
  for (const PerfRow& row : t.rows) {
    EXPECT_EQ(row.bytes, size);
    EXPECT_EQ(row.count, size / 4);
    EXPECT_EQ(row.type, "float");
    EXPECT_EQ(row.redop, "sum");
    EXPECT_EQ(row.root, -1);
    EXPECT_EQ(row.outOfPlace.wrong, 0);
    EXPECT_EQ(row.inPlace.wrong, 0);
    EXPECT_NE(r.out.find(rowText(row) + "\n"), std::string::npos) << rowText(row);
    sum += row.outOfPlace.busBw + row.inPlace.busBw;
    size *= 4;
  }
  EXPECT_EQ(t.outOfBounds, 0);
  EXPECT_EQ(t.outOfBoundsVerdict, "OK");
  EXPECT_NEAR(t.avgBusBw, sum / 16, 0.01);
  EXPECT_NE(r.out.find("# nThread 1 nGpus 1 minBytes 8 maxBytes 131072 step: 4(factor) warmup "
                       "iters: 1 iters: 2 agg iters: 1 validation: 1 graph: 0\n"),
            std::string::npos);
  EXPECT_NE(r.out.find("\n# Out of bounds values : 0 OK\n# Avg bus bandwidth    : "),
            std::string::npos);
}

class LoomPerfFactor : public ::testing::TestWithParam<perf::CollKind> {};

TEST_P(LoomPerfFactor, BusBandwidthIsAlgbwTimesTheFactor) {
  const perf::CollInfo& info = perf::collInfo(GetParam());
  const int n = 3;  // factors 4/3, 2/3 and 1 all differ
  const std::string dir = makeTempDir();
  const std::string json = dir + "/out.json";
  ProcessResult r = perf({"-np", std::to_string(n), info.name, "-b", "192K", "-e", "3M", "-f", "4",
                          "-n", "3", "-w", "1", "--json", json});
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  const auto tables = parsePerfOutput(r.out);
  ASSERT_EQ(tables.size(), 1u);
  ASSERT_EQ(tables[0].rows.size(), 3u);
  const double factor = perf::busFactor(GetParam(), n);
  for (const PerfRow& row : tables[0].rows) {
    // Size and count semantics: the per-rank param count times n for the n*param collectives.
    const long long elems = info.perRankParam ? row.count * n : row.count;
    EXPECT_EQ(row.bytes, elems * 4) << info.name;
    EXPECT_EQ(row.root, info.rooted ? 0 : -1);
    EXPECT_EQ(row.redop, info.reduces ? "sum" : "none");
    for (const PerfHalf* h : {&row.outOfPlace, &row.inPlace}) {
      EXPECT_NEAR(h->busBw, h->algBw * factor, 0.005 * factor + 0.005 + 1e-9) << info.name;
      // In-place sendrecv is not checked (N/A), as in nccl-tests.
      const bool unchecked = GetParam() == perf::CollKind::kSendRecv && h == &row.inPlace;
      EXPECT_EQ(h->wrong, unchecked ? -1 : 0);
    }
  }
  // Full precision from the JSON: algbw = bytes / time, busbw = algbw * factor.
  std::vector<perf::RunRecord> runs;
  std::string error;
  ASSERT_TRUE(perf::readRunsJson(readFile(json), &runs, &error)) << error;
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].collective, info.name);
  EXPECT_EQ(runs[0].nranks, n);
  ASSERT_EQ(runs[0].rows.size(), 3u);
  for (const perf::RowRecord& row : runs[0].rows) {
    const double moved = static_cast<double>(info.perRankParam ? row.count * n : row.count) * 4;
    for (const perf::Measurement* m : {&row.outOfPlace, &row.inPlace}) {
      ASSERT_TRUE(m->present);
      EXPECT_NEAR(m->algBw, moved / (m->timeUs * 1e-6) / 1e9, 1e-4 * m->algBw + 1e-9);
      EXPECT_NEAR(m->busBw, m->algBw * factor, 1e-4 * m->busBw + 1e-9);
      const bool unchecked = GetParam() == perf::CollKind::kSendRecv && m == &row.inPlace;
      EXPECT_EQ(m->wrong, unchecked ? -1 : 0);
    }
  }
  removeTree(dir);
}

INSTANTIATE_TEST_SUITE_P(EveryCollective, LoomPerfFactor,
                         ::testing::Values(perf::CollKind::kAllReduce, perf::CollKind::kAllGather,
                                           perf::CollKind::kReduceScatter,
                                           perf::CollKind::kBroadcast, perf::CollKind::kReduce,
                                           perf::CollKind::kAllToAll, perf::CollKind::kGather,
                                           perf::CollKind::kScatter, perf::CollKind::kSendRecv),
                         [](const ::testing::TestParamInfo<perf::CollKind>& p) {
                           return std::string(perf::collInfo(p.param).name);
                         });

TEST(LoomPerfCheck, CorruptedResultIsCountedAndFailsTheRun) {
  for (const char* coll : {"all_reduce", "alltoall"}) {
    ProcessResult r = perf({"-np", "2", coll, "-b", "1K", "-e", "4K", "-f", "2", "-n", "1", "-w",
                            "0", "--test-corrupt", "1"});
    EXPECT_NE(r.exitCode, 0) << coll;
    const auto tables = parsePerfOutput(r.out);
    ASSERT_EQ(tables.size(), 1u) << r.out;
    ASSERT_EQ(tables[0].rows.size(), 3u);
    for (const PerfRow& row : tables[0].rows) {
      EXPECT_EQ(row.outOfPlace.wrong, 1) << coll;
      EXPECT_EQ(row.inPlace.wrong, 1) << coll;
    }
    EXPECT_EQ(tables[0].outOfBounds, 6) << coll;
    EXPECT_EQ(tables[0].outOfBoundsVerdict, "FAILED");
    EXPECT_NE(r.err.find("rank 1: "), std::string::npos) << r.err;
  }
}

TEST(LoomPerfCheck, EveryTypeAndOpIsExact) {
  // -d all -o all: 12 types x 6 ops for the reductions, 12 types for the others.
  ProcessResult r =
      perf({"-np", "3", "all_reduce,reduce_scatter,reduce,all_gather,alltoall,broadcast", "-d",
            "all", "-o", "all", "-b", "96", "-e", "6K", "-f", "8", "-n", "1", "-w", "0"},
           300);
  ASSERT_EQ(r.exitCode, 0) << r.err;
  const auto tables = parsePerfOutput(r.out);
  ASSERT_EQ(tables.size(), 6u);
  const std::vector<std::string> types = {"int8",   "uint8",    "int32",  "uint32",
                                          "int64",  "uint64",   "half",   "float",
                                          "double", "bfloat16", "f8e4m3", "f8e5m2"};
  const std::vector<std::string> ops = {"sum", "prod", "max", "min", "avg", "mulsum"};
  for (size_t t = 0; t < tables.size(); ++t) {
    const bool reduces = t < 3;
    const size_t sizes = 3;  // 96 B, 768 B, 6 KiB
    ASSERT_EQ(tables[t].rows.size(), types.size() * (reduces ? ops.size() : 1) * sizes) << t;
    for (size_t i = 0; i < tables[t].rows.size(); ++i) {
      const PerfRow& row = tables[t].rows[i];
      const size_t combo = i / sizes;
      EXPECT_EQ(row.type, types[reduces ? combo / ops.size() : combo]);
      EXPECT_EQ(row.redop, reduces ? ops[combo % ops.size()] : "none");
      EXPECT_EQ(row.outOfPlace.wrong, 0) << row.type << " " << row.redop << " " << row.bytes;
      EXPECT_EQ(row.inPlace.wrong, 0) << row.type << " " << row.redop << " " << row.bytes;
    }
    EXPECT_EQ(tables[t].outOfBounds, 0);
  }
}

TEST(LoomPerfCheck, NoCheckPrintsNotApplicable) {
  ProcessResult r = perf({"all_reduce", "-t", "2", "-b", "1K", "-e", "1K", "-n", "1", "-c", "0"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  const auto tables = parsePerfOutput(r.out);
  ASSERT_EQ(tables.size(), 1u);
  ASSERT_EQ(tables[0].rows.size(), 1u);
  EXPECT_EQ(tables[0].rows[0].outOfPlace.wrong, -1);
  EXPECT_NE(r.out.find("    N/A"), std::string::npos);
}

TEST(LoomPerfJson, RecordsTheForcedAlgorithmOfEveryRow) {
  const std::string dir = makeTempDir();
  ProcessResult r = perf({"-np", "2", "alltoall", "-b", "8", "-e", "1K", "-f", "8", "-n", "1", "-w",
                          "0", "--algo", "bruck", "--json", dir + "/r.json"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  std::vector<perf::RunRecord> runs;
  std::string error;
  ASSERT_TRUE(perf::readRunsJson(readFile(dir + "/r.json"), &runs, &error)) << error;
  ASSERT_EQ(runs.size(), 1u);
  ASSERT_FALSE(runs[0].rows.empty());
  for (const perf::RowRecord& row : runs[0].rows)
    EXPECT_EQ(row.algorithm, "bruck") << row.bytes << " B";
  removeTree(dir);
}

TEST(LoomPerfJson, RecordsEveryRowOfTheTable) {
  const std::string dir = makeTempDir();
  ProcessResult r = perf({"-np", "2", "all_reduce,broadcast", "-d", "all", "-b", "1K", "-e", "4K",
                          "-f", "4", "-n", "1", "-w", "0", "--json", dir + "/r.json"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  const auto tables = parsePerfOutput(r.out);
  std::vector<perf::RunRecord> runs;
  std::string error;
  ASSERT_TRUE(perf::readRunsJson(readFile(dir + "/r.json"), &runs, &error)) << error;
  ASSERT_EQ(runs.size(), 2u);
  ASSERT_EQ(tables.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    ASSERT_EQ(runs[i].rows.size(), tables[i].rows.size());
    for (size_t k = 0; k < runs[i].rows.size(); ++k) {
      const perf::RowRecord& j = runs[i].rows[k];
      const PerfRow& t = tables[i].rows[k];
      EXPECT_EQ(static_cast<long long>(j.bytes), t.bytes);
      EXPECT_EQ(static_cast<long long>(j.count), t.count);
      EXPECT_EQ(j.type, t.type);
      EXPECT_EQ(j.root, t.root);
      EXPECT_NEAR(j.outOfPlace.busBw, t.outOfPlace.busBw, 0.006);
      EXPECT_EQ(j.inPlace.wrong, 0);
      EXPECT_FALSE(j.algorithm.empty()) << "row " << k << " does not say what the planner chose";
    }
  }
  EXPECT_EQ(runs[1].collective, "broadcast");
  removeTree(dir);
}

// The peers time MPI_Bcast and gloo::broadcast on one buffer, so --peer-format times loom's
// broadcast in place, and everything else out of place, as the peers do.
TEST(LoomPerfPeerFormat, TimesEachCollectiveAsThePeersDo) {
  const std::string dir = makeTempDir();
  ProcessResult r = perf({"-np", "2", "all_gather,broadcast", "--peer-format", "ours", "-b", "1K",
                          "-e", "1K", "--budget", "0.01", "--json", dir + "/r.json"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  std::vector<perf::RunRecord> runs;
  std::string error;
  ASSERT_TRUE(perf::readRunsJson(readFile(dir + "/r.json"), &runs, &error)) << error;
  ASSERT_EQ(runs.size(), 2u);
  for (const perf::RunRecord& run : runs) {
    ASSERT_EQ(run.rows.size(), 1u) << run.collective;
    const bool inPlace = run.collective == "broadcast";
    EXPECT_EQ(run.rows[0].inPlace.present, inPlace) << run.collective;
    EXPECT_EQ(run.rows[0].outOfPlace.present, !inPlace) << run.collective;
  }
  removeTree(dir);
}

TEST(LoomPerfPlot, DrawsOneLinePerSeries) {
  const std::string dir = makeTempDir();
  ProcessResult a = perf({"all_reduce", "-t", "2", "-b", "1K", "-e", "64K", "-f", "4", "-n", "1",
                          "--json", dir + "/a.json"});
  ProcessResult b = perf({"all_reduce", "-t", "2", "-b", "1K", "-e", "64K", "-f", "4", "-n", "1",
                          "--peer-format", "other", "--budget", "0.01", "--json", dir + "/b.json"});
  ASSERT_EQ(a.exitCode, 0) << a.err;
  ASSERT_EQ(b.exitCode, 0) << b.err;
  ProcessResult p = perf({"--plot", dir + "/p.svg", dir + "/a.json", dir + "/b.json"});
  ASSERT_EQ(p.exitCode, 0) << p.err;
  const std::string svg = readFile(dir + "/p.svg");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  size_t paths = 0;
  for (size_t at = svg.find("<path"); at != std::string::npos; at = svg.find("<path", at + 1))
    ++paths;
  EXPECT_EQ(paths, 2u);
  EXPECT_NE(svg.find(">loom</text>"), std::string::npos);
  EXPECT_NE(svg.find(">other</text>"), std::string::npos);
  EXPECT_NE(perf({"--plot", dir + "/q.svg", dir + "/missing.json"}).exitCode, 0);
  removeTree(dir);
}

TEST(LoomPerfPeerFormat, PrintsWhatSummarizePyReads) {
  ProcessResult r = perf({"-np", "2", "all_reduce,broadcast", "--peer-format", "ours-loom", "-b",
                          "16", "-e", "4K", "-f", "4", "--budget", "0.05"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_NE(r.out.find("# label=ours-loom collective=allreduce nranks=2"), std::string::npos);
  EXPECT_NE(r.out.find("# label=ours-loom collective=bcast nranks=2"), std::string::npos);
  int rows = 0;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    long long size, count, wrong;
    int iters;
    double time, alg, bus;
    ASSERT_EQ(std::sscanf(line.c_str(), "%lld %lld %d %lf %lf %lf %lld", &size, &count, &iters,
                          &time, &alg, &bus, &wrong),
              7)
        << line;
    EXPECT_EQ(wrong, 0);
    EXPECT_GE(iters, 3);
    ++rows;
  }
  EXPECT_EQ(rows, 10);  // 16 B .. 4 KiB by 4, two collectives
}

bool hasOpenMpi() {
  ProcessResult r = runProcess({"/bin/sh", "-c", "mpirun --version"}, {}, 30);
  return r.exitCode == 0 && r.out.find("Open MPI") != std::string::npos;
}

TEST(LoomPerfLaunch, RunsUnderOpenMpiMpirun) {
  if (!hasOpenMpi()) GTEST_SKIP() << "Open MPI's mpirun is not installed (make deps)";
  ProcessResult r = runProcess(
      {"/bin/sh", "-c",
       "exec mpirun --allow-run-as-root --oversubscribe -np 2 -x LOOM_SOCKET_IFNAME=lo " + kPerf +
           " all_reduce,alltoall -b 8 -e 64K -f 8 -n 2 -w 1"},
      kEnv, 120);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  const auto tables = parsePerfOutput(r.out);
  ASSERT_EQ(tables.size(), 2u) << r.out;
  EXPECT_NE(r.out.find("2 ranks (2 processes x 1 threads)"), std::string::npos);
  for (const PerfTable& t : tables) {
    EXPECT_EQ(t.rows.size(), 5u);  // 8 B .. 32 KiB by 8
    EXPECT_EQ(t.outOfBounds, 0);
  }
}

TEST(LoomPerfLaunch, RunsUnderLoomrunWithThreadRanks) {
  ProcessResult r = runProcess({kLoomrun, "-np", "2", kPerf, "all_reduce", "-t", "2", "-b", "1K",
                                "-e", "16K", "-f", "4", "-n", "2"},
                               kEnv, 120);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("4 ranks (2 processes x 2 threads)"), std::string::npos) << r.out;
  const auto tables = parsePerfOutput(r.out);
  ASSERT_EQ(tables.size(), 1u);
  EXPECT_EQ(tables[0].rows.size(), 3u);
  EXPECT_EQ(tables[0].outOfBounds, 0);
}

// Starts two ranks with per-rank environments, as torchrun or srun would.
void runTwoRanks(const std::map<std::string, std::string>& common,
                 const std::vector<std::map<std::string, std::string>>& perRank) {
  Subprocess ranks[2];
  for (int i = 0; i < 2; ++i) {
    std::map<std::string, std::string> env = common;
    for (const auto& [k, v] : perRank[i])
      env[k] = v;
    ASSERT_TRUE(
        ranks[i].start({kPerf, "all_reduce", "-b", "1K", "-e", "4K", "-f", "4", "-n", "2"}, env));
  }
  for (int i = 0; i < 2; ++i) {
    ProcessResult r = ranks[i].wait(120);
    EXPECT_EQ(r.exitCode, 0) << "rank " << i << ": " << r.out << r.err;
    if (i == 0) {
      EXPECT_NE(r.out.find("2 ranks (2 processes"), std::string::npos) << r.out;
    }
  }
}

TEST(LoomPerfLaunch, RunsWithTorchrunEnvironment) {
  const std::string port = std::to_string(20000 + (getpid() % 10000));
  runTwoRanks({{"LOOM_SOCKET_IFNAME", "lo"},
               {"MASTER_ADDR", "127.0.0.1"},
               {"MASTER_PORT", port},
               {"WORLD_SIZE", "2"},
               {"LOCAL_WORLD_SIZE", "2"},
               {"TORCHELASTIC_RUN_ID", "t" + port}},
              {{{"RANK", "0"}, {"LOCAL_RANK", "0"}}, {{"RANK", "1"}, {"LOCAL_RANK", "1"}}});
}

TEST(LoomPerfLaunch, RunsWithSrunEnvironment) {
  const std::string job = std::to_string(100000 + getpid());
  runTwoRanks({{"LOOM_SOCKET_IFNAME", "lo"},
               {"SLURM_JOB_ID", job},
               {"SLURM_STEP_ID", "0"},
               {"SLURM_NTASKS", "2"},
               {"SLURM_NNODES", "1"},
               {"SLURM_NTASKS_PER_NODE", "2"},
               {"SLURM_STEP_TASKS_PER_NODE", "2"}},
              {{{"SLURM_PROCID", "0"}, {"SLURM_LOCALID", "0"}},
               {{"SLURM_PROCID", "1"}, {"SLURM_LOCALID", "1"}}});
}

TEST(LoomPerfOptions, RejectsBadUsage) {
  EXPECT_EQ(perf({"no_such_collective"}).exitCode, 2);
  EXPECT_EQ(perf({"all_reduce", "-b", "2M", "-e", "1M"}).exitCode, 2);
  EXPECT_EQ(perf({"all_reduce", "-d", "complex"}).exitCode, 2);
  EXPECT_EQ(perf({"all_reduce", "--transport", "carrier-pigeon"}).exitCode, 2);
  EXPECT_EQ(perf({"--help"}).exitCode, 0);
}

TEST(LoomPerfOptions, AlgoAndTransportReachTheLibrary) {
  ProcessResult r = perf({"-np", "2", "broadcast", "--algo", "chain", "--transport", "socket", "-b",
                          "64K", "-e", "64K", "-n", "1"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_NE(r.out.find("transport socket, LOOM_ALGO broadcast:chain"), std::string::npos) << r.out;
  ProcessResult bad = perf(
      {"-np", "2", "all_reduce", "--algo", "no_such_algorithm", "-b", "1K", "-e", "1K", "-n", "1"});
  EXPECT_NE(bad.exitCode, 0);
  EXPECT_NE(bad.err.find("no_such_algorithm"), std::string::npos) << bad.err;
}

// --calibrate measures this machine and writes a profile that every later run can load; the
// planner then logs its choices with predicted times from it.
TEST(LoomPerfCalibrate, WritesAProfileThePlannerLoads) {
  const std::string dir = makeTempDir();
  const std::string profile = dir + "/tuning.txt";
  // --tune 2 at small sizes, once: every algorithm of the six collectives forced on 2 processes.
  ProcessResult r =
      perf({"--calibrate", profile, "--tune", "2", "--tune-max", "1K", "--tune-runs", "1"}, 240);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  const std::string text = readFile(profile);
  const size_t measured = text.find("\nmeasured.np2 ");
  ASSERT_NE(measured, std::string::npos) << text;
  for (const char* collective : {"allreduce:0-", "allgather:0-", "reducescatter:0-", "broadcast:0-",
                                 "reduce:0-", "alltoall:0-"})
    EXPECT_NE(text.find(collective, measured), std::string::npos) << collective << "\n" << text;
  for (const char* key : {"intra.alpha_us", "intra.gbps", "inter.alpha_us", "inter.gbps",
                          "reduce.gbps", "step.us", "wake.us", "window.us", "copy.gbps"}) {
    const size_t at = text.find(std::string("\n") + key + " ");
    ASSERT_NE(at, std::string::npos) << key << " missing from:\n" << text;
    const double value = std::atof(text.c_str() + at + std::strlen(key) + 2);
    EXPECT_GT(value, 0) << key;
    EXPECT_TRUE(std::isfinite(value)) << key;
  }
  std::map<std::string, std::string> env = kEnv;
  env["LOOM_TUNING_FILE"] = profile;
  env["LOOM_DEBUG"] = "INFO";
  env["LOOM_DEBUG_SUBSYS"] = "TUNING";
  ProcessResult run = runProcess(
      {kPerf, "-np", "2", "all_reduce", "-b", "8", "-e", "64K", "-f", "64", "-n", "2"}, env, 120);
  ASSERT_EQ(run.exitCode, 0) << run.out << run.err;
  const std::string all = run.out + run.err;
  EXPECT_NE(all.find("TUNING allreduce 8 B on 2 ranks"), std::string::npos) << all;
  EXPECT_NE(all.find("predicted"), std::string::npos) << all;
  // 8 B on 2 processes is in a measured range, so the measured line chose it.
  EXPECT_NE(all.find("(measured, LOOM_TUNING_FILE)"), std::string::npos) << all;
  env["LOOM_TUNING_FILE"] = dir + "/missing.txt";
  ProcessResult bad = runProcess({kPerf, "-np", "2", "all_reduce", "-b", "8", "-e", "8"}, env, 120);
  EXPECT_NE(bad.exitCode, 0);
  EXPECT_NE((bad.out + bad.err).find("LOOM_TUNING_FILE: cannot read"), std::string::npos)
      << bad.out << bad.err;
  removeTree(dir);
}

}  // namespace
}  // namespace loom::test
