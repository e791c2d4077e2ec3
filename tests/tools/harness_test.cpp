// loom-perf's harness in process: exact encodings of the narrow types, the value model's
// promise (every partial reduction is exact, in any order), option parsing, the size sweep,
// counts and busbw factors per collective, nccl-tests' time format, JSON round trip and plot
// series naming.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "collectives.h"
#include "gtest/gtest.h"
#include "json.h"
#include "options.h"
#include "plot.h"
#include "report.h"
#include "types.h"
#include "values.h"

namespace loom::perf {
namespace {

uint32_t bitsOf(loomDataType_t type, int64_t v) {
  uint32_t bits = 0;
  encodeInt(type, v, &bits);
  return bits;
}

TEST(PerfTypes, EncodesKnownBitPatterns) {
  EXPECT_EQ(bitsOf(loomFloat16, 1), 0x3C00u);
  EXPECT_EQ(bitsOf(loomFloat16, -2), 0xC000u);
  EXPECT_EQ(bitsOf(loomFloat16, 2048), 0x6800u);
  EXPECT_EQ(bitsOf(loomBfloat16, 1), 0x3F80u);
  EXPECT_EQ(bitsOf(loomBfloat16, 256), 0x4380u);
  EXPECT_EQ(bitsOf(loomFloat8e4m3, 1), 0x38u);
  EXPECT_EQ(bitsOf(loomFloat8e4m3, 448), 0x7Eu);
  EXPECT_EQ(bitsOf(loomFloat8e4m3, 1000), 0x7Eu);  // saturates (no infinity in E4M3)
  EXPECT_EQ(bitsOf(loomFloat8e5m2, 1), 0x3Cu);
  EXPECT_EQ(bitsOf(loomFloat8e5m2, -2), 0xC0u);
  EXPECT_EQ(bitsOf(loomFloat8e5m2, 1 << 16), 0x7Cu);  // infinity
  EXPECT_EQ(bitsOf(loomInt8, -1), 0xFFu);
}

TEST(PerfTypes, EveryIntegerUpToTheExactLimitRoundTrips) {
  for (loomDataType_t type : allTypes()) {
    const TypeInfo& info = typeInfo(type);
    const IntEncoder enc(type);
    const int64_t limit = std::min<int64_t>(info.exactLimit, 1 << 12);
    for (int64_t v = info.isSigned ? -limit : 0; v <= limit; ++v) {
      uint64_t a = 0, b = 0;
      encodeInt(type, v, &a);
      enc.put(v, &b);
      ASSERT_EQ(a, b) << info.name << " " << v;
      ASSERT_EQ(decodeValue(type, &a), static_cast<double>(v)) << info.name << " " << v;
    }
    for (int k = 0; k <= info.maxPow2; ++k) {
      uint64_t a = 0;
      encodeInt(type, int64_t{1} << k, &a);
      ASSERT_EQ(decodeValue(type, &a), std::ldexp(1.0, k)) << info.name << " 2^" << k;
    }
  }
}

TEST(PerfTypes, ParsesNamesAndAliases) {
  EXPECT_EQ(parseType("float"), loomFloat32);
  EXPECT_EQ(parseType("half"), loomFloat16);
  EXPECT_EQ(parseType("bf16"), loomBfloat16);
  EXPECT_EQ(parseType("f8e5m2"), loomFloat8e5m2);
  EXPECT_FALSE(parseType("complex").has_value());
  EXPECT_EQ(parseOp("mulsum"), OpKind::kMulSum);
  EXPECT_EQ(allTypes().size(), 12u);
  EXPECT_EQ(allOps().size(), 6u);
}

// Reduces the ranks' inputs in the given order, rounding to the type after every step (as a
// ring or tree algorithm does), and checks each partial result is exact.
void expectExactInOrder(loomDataType_t type, OpKind op, int n, const ValueModel& m, uint64_t index,
                        const std::vector<int>& order) {
  const TypeInfo& info = typeInfo(type);
  double acc = static_cast<double>(m.input(order[0], index));
  for (size_t i = 1; i < order.size(); ++i) {
    const double v = static_cast<double>(m.input(order[i], index));
    acc = op == OpKind::kProd  ? acc * v
          : op == OpKind::kMax ? std::max(acc, v)
          : op == OpKind::kMin ? std::min(acc, v)
                               : acc + v;
    if (!info.isFloat) continue;  // integers wrap exactly by definition
    uint64_t bits = 0;
    encodeInt(type, static_cast<int64_t>(acc), &bits);
    ASSERT_EQ(decodeValue(type, &bits), acc)
        << info.name << " " << opName(op) << " n=" << n << " index " << index << " step " << i;
  }
  if (op == OpKind::kAvg) acc /= n;
  if (op == OpKind::kMulSum) acc *= 2;
  if (info.isFloat) {
    EXPECT_EQ(acc, static_cast<double>(m.reduced(index)));
  }
}

TEST(PerfValues, EveryPartialReductionIsExactInAnyOrder) {
  for (loomDataType_t type : allTypes()) {
    for (OpKind op : allOps()) {
      for (int n : {1, 2, 3, 4, 5, 8, 9, 16, 17, 33}) {
        const ValueModel m(type, op, n);
        std::vector<int> forward(n), backward(n);
        for (int r = 0; r < n; ++r)
          forward[r] = r, backward[r] = n - 1 - r;
        for (uint64_t index = 0; index < 64; ++index) {
          expectExactInOrder(type, op, n, m, index, forward);
          expectExactInOrder(type, op, n, m, index, backward);
        }
      }
    }
  }
}

TEST(PerfValues, InputsDifferBetweenRanks) {
  const ValueModel m(loomFloat32, OpKind::kNone, 4);
  int same = 0;
  for (uint64_t i = 0; i < 100; ++i)
    same += m.input(0, i) == m.input(1, i);
  EXPECT_LT(same, 5);
}

Options parse(std::vector<std::string> args, ParseResult expect = ParseResult::kRun) {
  std::vector<char*> argv;
  for (std::string& a : args)
    argv.push_back(a.data());
  Options o;
  std::string error;
  EXPECT_EQ(parseOptions(static_cast<int>(argv.size()), argv.data(), &o, &error), expect) << error;
  return o;
}

TEST(PerfOptions, ParsesNcclTestsFlags) {
  Options o =
      parse({"loom-perf", "all_reduce", "-b", "8",    "-e", "128M", "-f", "2",  "-n", "7",  "-w3",
             "--op",      "max",        "-d", "half", "-r", "1",    "-z", "1",  "-a", "3",  "-c",
             "0",         "-N",         "2",  "-m",   "4",  "-t",   "2",  "-g", "1",  "-G", "0"});
  EXPECT_EQ(o.minBytes, 8u);
  EXPECT_EQ(o.maxBytes, 128u << 20);
  EXPECT_EQ(o.stepFactor, 2u);
  EXPECT_EQ(o.iters, 7);
  EXPECT_EQ(o.warmupIters, 3);
  EXPECT_EQ(o.ops, std::vector<OpKind>{OpKind::kMax});
  EXPECT_EQ(o.types, std::vector<loomDataType_t>{loomFloat16});
  EXPECT_EQ(o.root, 1);
  EXPECT_EQ(o.blocking, 1);
  EXPECT_EQ(o.average, 3);
  EXPECT_EQ(o.check, 0);
  EXPECT_EQ(o.runCycles, 2);
  EXPECT_EQ(o.aggIters, 4);
  EXPECT_EQ(o.nThreads, 2);
  Options all = parse({"loom-perf", "all", "-d", "all", "-o", "all", "--minbytes=1G", "-e", "1G"});
  EXPECT_EQ(all.collectives.size(), 9u);
  EXPECT_EQ(all.types.size(), 12u);
  EXPECT_EQ(all.ops.size(), 6u);
  EXPECT_EQ(all.minBytes, 1u << 30);
  Options named = parse({"/x/all_gather_perf", "-b", "1K", "-e", "1K"});
  EXPECT_EQ(named.collectives, std::vector<CollKind>{CollKind::kAllGather});
  parse({"loom-perf", "all_reduce", "-g", "2"}, ParseResult::kError);
  parse({"loom-perf"}, ParseResult::kError);
  parse({"loom-perf", "all_reduce", "-b"}, ParseResult::kError);
  parse({"loom-perf", "all_reduce", "-x", "1"}, ParseResult::kError);
}

TEST(PerfOptions, CalibrateTakesOnlyTuneOptions) {
  Options plain = parse({"loom-perf", "--calibrate", "p.txt"});
  EXPECT_EQ(plain.calibrateOutput, "p.txt");
  EXPECT_TRUE(plain.tuneRanks.empty());
  Options o = parse({"loom-perf", "--calibrate", "p.txt", "--tune", "2,4,8", "--tune-max", "4M",
                     "--tune-runs", "5"});
  EXPECT_EQ(o.tuneRanks, (std::vector<int>{2, 4, 8}));
  EXPECT_EQ(o.tuneMaxBytes, 4u << 20);
  EXPECT_EQ(o.tuneRuns, 5);
  parse({"loom-perf", "--calibrate", "p.txt", "--tune", "1"}, ParseResult::kError);
  parse({"loom-perf", "--calibrate", "p.txt", "--tune", "2,,4"}, ParseResult::kError);
  parse({"loom-perf", "--calibrate", "p.txt", "--tune"}, ParseResult::kError);
  parse({"loom-perf", "--calibrate", "p.txt", "--tune-max", "huge"}, ParseResult::kError);
  parse({"loom-perf", "--calibrate", "p.txt", "--tune-runs", "0"}, ParseResult::kError);
  parse({"loom-perf", "--calibrate", "p.txt", "-n", "5"}, ParseResult::kError);
}

TEST(PerfOptions, ParsesLoomExtras) {
  Options o = parse({"loom-perf", "-np", "4", "broadcast,reduce", "--algo", "binomial",
                     "--transport", "shm", "--json", "r.json", "--peer-format", "ours", "--budget",
                     "0.5", "--test-corrupt", "2"});
  EXPECT_EQ(o.np, 4);
  EXPECT_EQ(algoOverride(o), "broadcast:binomial;reduce:binomial");
  EXPECT_EQ(o.transport, "shm");
  EXPECT_EQ(o.jsonPath, "r.json");
  EXPECT_EQ(o.peerLabel, "ours");
  EXPECT_EQ(o.budgetSec, 0.5);
  EXPECT_EQ(o.corruptRank, 2);
  Options s = parse({"loom-perf", "sendrecv", "--algo", "direct"});
  EXPECT_EQ(algoOverride(s), "send:direct;recv:direct");
  Options full = parse({"loom-perf", "all_reduce", "--algo", "allreduce:ring"});
  EXPECT_EQ(algoOverride(full), "allreduce:ring");
  Options p = parse({"loom-perf", "--plot", "out.svg", "a.json", "b.json"});
  EXPECT_EQ(p.plotOutput, "out.svg");
  EXPECT_EQ(p.plotInputs, (std::vector<std::string>{"a.json", "b.json"}));
  char a0[] = "loom-perf", a1[] = "-np", a2[] = "4", a3[] = "all_reduce", a4[] = "-b", a5[] = "8";
  char* argv[] = {a0, a1, a2, a3, a4, a5};
  EXPECT_EQ(argsWithoutNp(6, argv),
            (std::vector<std::string>{"loom-perf", "all_reduce", "-b", "8"}));
}

TEST(PerfOptions, SweepsSizesLikeNcclTests) {
  Options o = parse({"loom-perf", "all_reduce", "-b", "8", "-e", "64", "-f", "2"});
  EXPECT_EQ(sweepSizes(o), (std::vector<size_t>{8, 16, 32, 64}));
  Options s = parse({"loom-perf", "all_reduce", "-b", "1K", "-e", "3K", "-i", "1K"});
  EXPECT_EQ(sweepSizes(s), (std::vector<size_t>{1024, 2048, 3072}));
  Options d = parse({"loom-perf", "all_reduce"});
  EXPECT_EQ(sweepSizes(d), (std::vector<size_t>{32u << 20}));  // nccl-tests' default
}

TEST(PerfCollectives, CountsAndFactorsFollowNcclTests) {
  const int n = 4;
  Counts c = countsFor(CollKind::kAllGather, 1000, n);
  EXPECT_EQ(c.param, 250u);
  EXPECT_EQ(c.recv, 1000u);
  EXPECT_EQ(c.send, 250u);
  c = countsFor(CollKind::kReduceScatter, 1001, n);
  EXPECT_EQ(c.param, 250u);
  EXPECT_EQ(c.send, 1000u);
  EXPECT_EQ(rowBytes(c, 4), 4000u);
  c = countsFor(CollKind::kAllToAll, 1000, n);
  EXPECT_EQ(c.param, 250u);
  EXPECT_EQ(c.send, 1000u);
  EXPECT_DOUBLE_EQ(busFactor(CollKind::kAllReduce, n), 1.5);
  EXPECT_DOUBLE_EQ(busFactor(CollKind::kAllGather, n), 0.75);
  EXPECT_DOUBLE_EQ(busFactor(CollKind::kReduceScatter, n), 0.75);
  EXPECT_DOUBLE_EQ(busFactor(CollKind::kAllToAll, n), 0.75);
  EXPECT_DOUBLE_EQ(busFactor(CollKind::kGather, n), 0.75);
  EXPECT_DOUBLE_EQ(busFactor(CollKind::kScatter, n), 0.75);
  EXPECT_DOUBLE_EQ(busFactor(CollKind::kBroadcast, n), 1.0);
  EXPECT_DOUBLE_EQ(busFactor(CollKind::kReduce, n), 1.0);
  EXPECT_DOUBLE_EQ(busFactor(CollKind::kSendRecv, n), 1.0);
  double alg = 0, bus = 0;
  bandwidth(CollKind::kAllGather, countsFor(CollKind::kAllGather, 1000, n), 4, n, 1e-6, &alg, &bus);
  EXPECT_DOUBLE_EQ(alg, 4.0);  // 4000 bytes in 1 us
  EXPECT_DOUBLE_EQ(bus, 3.0);
  EXPECT_EQ(parseCollective("all_reduce_perf"), CollKind::kAllReduce);
  EXPECT_EQ(parseCollective("allreduce"), CollKind::kAllReduce);
  EXPECT_EQ(parseCollective("bcast"), CollKind::kBroadcast);
}

TEST(PerfReport, FormatsTimeLikeNcclTests) {
  EXPECT_EQ(formatTime(12.345), "  12.35");
  EXPECT_EQ(formatTime(123.45), "  123.5");
  EXPECT_EQ(formatTime(12345.6), "  12346");
}

TEST(PerfJson, RoundTripsRunsAndNamesPlotSeries) {
  Options o = parse({"loom-perf", "all_reduce", "-b", "8", "-e", "16", "-f", "2"});
  RunRecord run;
  run.collective = "all_reduce";
  run.nranks = 2;
  for (size_t bytes : {8, 16}) {
    RowRecord row;
    row.bytes = bytes;
    row.count = bytes / 4;
    row.type = "float";
    row.redop = "sum";
    row.outOfPlace = {true, 10.5, 0.5, 0.5, 0, 20};
    row.inPlace = {true, 11.0, 0.25, 0.25, -1, 20};
    run.rows.push_back(row);
  }
  RunRecord other = run;
  other.label = "ompi";
  const std::string path = ::testing::TempDir() + "/perf_json_test.json";
  std::string error;
  ASSERT_TRUE(writeResultsJson(path, o, nowString(), {run, other}, &error)) << error;
  FILE* f = std::fopen(path.c_str(), "r");
  ASSERT_NE(f, nullptr);
  std::string text(1 << 16, '\0');
  text.resize(std::fread(text.data(), 1, text.size(), f));
  std::fclose(f);
  std::vector<RunRecord> back;
  ASSERT_TRUE(readRunsJson(text, &back, &error)) << error;
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].rows.size(), 2u);
  EXPECT_EQ(back[0].rows[1].bytes, 16u);
  EXPECT_EQ(back[0].rows[0].inPlace.wrong, -1);
  EXPECT_DOUBLE_EQ(back[0].rows[0].outOfPlace.timeUs, 10.5);
  const std::vector<PlotSeries> series = seriesOf(back);
  ASSERT_EQ(series.size(), 2u);
  EXPECT_EQ(series[0].name, "loom");
  EXPECT_EQ(series[1].name, "ompi");
  EXPECT_EQ(series[0].points.size(), 2u);
  const std::string svg = renderSvg(series, "t");
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  JsonValue v;
  EXPECT_FALSE(parseJson("{\"a\": [1, 2,]}", &v, &error));
  EXPECT_TRUE(parseJson("{\"a\": [1, 2], \"b\": {\"c\": null}}", &v, &error)) << error;
  EXPECT_EQ(v["a"].array.size(), 2u);
  EXPECT_TRUE(v["b"]["c"].isNull());
}

}  // namespace
}  // namespace loom::perf
