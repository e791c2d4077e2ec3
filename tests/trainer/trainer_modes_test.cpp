// What each parallel mode must show beyond equivalence (TRAINER.md checks 5-12): counters,
// memory, schedule traces, agreement across ranks, determinism.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <ostream>

#include "model_spec.h"
#include "trainer_test_util.h"

namespace loom::trainer::test {
namespace {

constexpr int kL = Dims::kLayers;
constexpr double kPsi = Dims::kParams;

// Gradient buckets of the one-stage dense model: each unit cut into ~16 KB pieces.
uint64_t bucketsOf(size_t elementBytes) {
  std::vector<size_t> unitSize(kNumUnits, 0);
  for (const TensorSpec& t : modelTensors(false))
    unitSize[t.unit] += t.numel();
  uint64_t n = 0;
  for (size_t u : unitSize)
    n += (u * elementBytes + 16383) / 16384;
  return n;
}

// ---- check 5: accumulation ---------------------------------------------------------------

TEST(Accumulation, FourMicroBatchesOfFourEqualOneOfSixteen) {
  RunResult a = runOrFail(configOf("--mbs 4 --accum 4 --dtype f64"));
  RunResult b = runOrFail(configOf("--mbs 16 --accum 1 --dtype f64"));
  ASSERT_FALSE(a.finalParams.empty());
  ASSERT_FALSE(b.finalParams.empty());
  const double rel = relF(a.finalParams.data(), b.finalParams.data(), b.finalParams.size());
  std::printf("RESULT check5 accum4xmbs4_vs_accum1xmbs16 params_relF %.3g (per-tensor max %.3g)\n",
              rel, maxTensorRelF(a.finalParams, b.finalParams, false));
  EXPECT_LE(rel, 1e-12);
}

TEST(Accumulation, DataParallelGradientsAreReducedOncePerStep) {
  RunResult acc = runOrFail(configOf("--dp 2 --mbs 2 --accum 4 --dtype f64", 3));
  RunResult one = runOrFail(configOf("--dp 2 --mbs 8 --accum 1 --dtype f64", 3));
  ASSERT_EQ(acc.ranks.size(), 2u);
  // Plain DP reduces each ~16 KB bucket with a ReduceScatter + AllGather pair (param_store.h).
  const uint64_t buckets = bucketsOf(sizeof(double));
  for (int r = 0; r < 2; ++r) {
    const CounterDelta a = counterDelta(acc.ranks[r], kDpGroup, 1, 2);
    const CounterDelta o = counterDelta(one.ranks[r], kDpGroup, 1, 2);
    EXPECT_EQ(a.calls[loomCollReduceScatter], buckets) << "one reduction (in buckets) per step";
    EXPECT_EQ(a.calls[loomCollAllGather], buckets);
    EXPECT_EQ(a.calls[loomCollReduceScatter], o.calls[loomCollReduceScatter]);
    EXPECT_EQ(a.totalSent(), o.totalSent());
    if (r == 0)
      std::printf(
          "RESULT check5 dp_reductions_per_step accum4 %llu accum1 %llu (buckets %llu, "
          "4x would be %llu)\n",
          static_cast<unsigned long long>(a.calls[loomCollReduceScatter]),
          static_cast<unsigned long long>(o.calls[loomCollReduceScatter]),
          static_cast<unsigned long long>(buckets), static_cast<unsigned long long>(4 * buckets));
  }
}

// ---- check 6: ZeRO -------------------------------------------------------------------------

class Zero : public testing::TestWithParam<int> {};

TEST_P(Zero, StagesEqualPlainDpAndMatchMemoryAndTrafficFormulas) {
  const int n = GetParam();
  const std::string dp = "--dp " + std::to_string(n) + " --mbs " + std::to_string((16 + n - 1) / n);
  RunResult plain64 = runOrFail(configOf(dp + " --dtype f64"));
  RunResult plain32 = runOrFail(configOf(dp + " --dtype f32"));
  ASSERT_FALSE(plain64.finalParams.empty());
  ASSERT_FALSE(plain32.finalParams.empty());
  for (int stage = 0; stage <= 3; ++stage) {
    const std::string z = dp + " --zero " + std::to_string(stage);
    RunResult sharded;
    if (stage > 0) sharded = runOrFail(configOf(z + " --dtype f32"));
    const RunResult& r32 = stage == 0 ? plain32 : sharded;
    if (stage > 0) {
      RunResult r64 = runOrFail(configOf(z + " --dtype f64"));
      ASSERT_FALSE(r64.finalParams.empty());
      ASSERT_FALSE(r32.finalParams.empty());
      const double e64 =
          relF(r64.finalParams.data(), plain64.finalParams.data(), plain64.finalParams.size());
      const double e32 =
          relF(r32.finalParams.data(), plain32.finalParams.data(), plain32.finalParams.size());
      std::printf("RESULT check6 zero%d dp%d vs_dp params_relF f64 %.3g f32 %.3g\n", stage, n, e64,
                  e32);
      EXPECT_LE(e64, 1e-12) << "zero " << stage;
      EXPECT_LE(e32, 1e-6) << "zero " << stage;
    }
    // Persistent bytes (fp32: 4 bytes per element) against the formula; each sharded buffer
    // pads every bucket to a multiple of N: less than one element per bucket and rank.
    const int64_t buckets = static_cast<int64_t>(bucketsOf(sizeof(float)));
    const double formulas[4] = {16 * kPsi, 8 * kPsi + 8 * kPsi / n, 4 * kPsi + 12 * kPsi / n,
                                16 * kPsi / n};
    const int shardedBuffers[4] = {0, 2, 3, 4};
    for (const RankReport& rank : r32.ranks) {
      const int64_t persistent = rank.memory.persistentTotal();
      const double slack = persistent - formulas[stage];
      EXPECT_EQ(rank.memory.persistent[static_cast<int>(MemTag::kActivation)], 0);
      EXPECT_GE(slack, 0) << "zero " << stage;
      EXPECT_LT(slack, 4.0 * shardedBuffers[stage] * buckets + 1) << "zero " << stage << " padding";
      // Bytes sent in step 2 (no init or gather traffic).
      const double sent = static_cast<double>(bytesSentAllGroups(rank, 1, 2));
      const double want = (stage == 3 ? 3.0 : 2.0) * (n - 1) / n * 4 * kPsi;
      EXPECT_NEAR(sent / want, 1.0, 0.05) << "zero " << stage << " rank " << rank.coords.rank;
      if (rank.coords.rank == 0)
        std::printf(
            "RESULT check6 zero%d dp%d persistent_bytes %lld formula %.0f | sent_per_step %.0f "
            "formula %.0f ratio %.4f\n",
            stage, n, static_cast<long long>(persistent), formulas[stage], sent, want, sent / want);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Dp, Zero, testing::Values(2, 3, 4),
                         [](const testing::TestParamInfo<int>& i) {
                           return "Dp" + std::to_string(i.param);
                         });

// ---- check 7: tensor-parallel collective counts -------------------------------------------

TEST(TensorParallelCounts, FourLPlusFiveAllReducesPerMicroBatchOrTheirSpPairs) {
  const int m = 8;  // --mbs 2: 16 / 2 micro-batches
  RunResult plain = runOrFail(configOf("--tp 2 --dtype f64", 2));
  RunResult sp = runOrFail(configOf("--tp 2 --sp --dtype f64", 2));
  for (int r = 0; r < 2; ++r) {
    const CounterDelta p = counterDelta(plain.ranks[r], kTpGroup, 1, 2);
    EXPECT_EQ(p.calls[loomCollAllReduce], static_cast<uint64_t>(m * (4 * kL + 5)));
    EXPECT_EQ(p.calls[loomCollAllGather], 0u);
    EXPECT_EQ(p.calls[loomCollReduceScatter], 0u);
    const CounterDelta s = counterDelta(sp.ranks[r], kTpGroup, 1, 2);
    // Only the cross-entropy's three AllReduces per micro-batch stay, plus one per step that
    // sums the TP-replicated parameters' gradients (their rows are split with --sp).
    EXPECT_EQ(s.calls[loomCollAllReduce], static_cast<uint64_t>(3 * m + 1));
    EXPECT_EQ(s.calls[loomCollAllGather], static_cast<uint64_t>(m * (4 * kL + 2)));
    EXPECT_EQ(s.calls[loomCollReduceScatter], static_cast<uint64_t>(m * (4 * kL + 2)));
    if (r == 0)
      std::printf(
          "RESULT check7 tp_calls_per_microbatch allreduce %.2f (4L+5 = %d) | sp: allreduce "
          "%.3f allgather %.2f reducescatter %.2f\n",
          p.calls[loomCollAllReduce] / double(m), 4 * kL + 5,
          s.calls[loomCollAllReduce] / double(m), s.calls[loomCollAllGather] / double(m),
          s.calls[loomCollReduceScatter] / double(m));
  }
}

// ---- check 8: pipeline schedules ----------------------------------------------------------

struct PipeCase {
  int pp;
  const char* schedule;
};

void PrintTo(const PipeCase& c, std::ostream* os) {
  *os << "pp" << c.pp << " " << c.schedule;
}

class Pipeline : public testing::TestWithParam<PipeCase> {};

TEST_P(Pipeline, TraceIsValidStashIsBoundedAndIdleFractionIsExact) {
  const int p = GetParam().pp, m = 8;
  const bool gpipe = std::strcmp(GetParam().schedule, "gpipe") == 0;
  RunResult r = runOrFail(configOf(
      "--pp " + std::to_string(p) + " --schedule " + GetParam().schedule + " --dtype f32", 3));
  ASSERT_EQ(r.ranks.size(), static_cast<size_t>(p));
  std::vector<int> mbs;
  for (int j = 0; j < m; ++j)
    mbs.push_back(j);
  for (int step = 0; step < 3; ++step) {
    RoundTrace trace(p);
    for (const RankReport& rank : r.ranks)
      for (const TraceEvent& e : rank.trace)
        if (e.step == step) trace[rank.coords.pp].push_back(e);
    EXPECT_EQ(validateTrace(trace, mbs), "") << "step " << step;
    int64_t idle = 0, total = 0;
    logicalIdle(trace, &idle, &total);
    // idle / total == (p - 1) / (m + p - 1), exactly.
    EXPECT_EQ(idle * (m + p - 1), total * (p - 1)) << idle << " / " << total;
    if (step == 0)
      std::printf("RESULT check8 pp%d %s idle %lld/%lld = %.4f (want %.4f)\n", p,
                  GetParam().schedule, static_cast<long long>(idle), static_cast<long long>(total),
                  double(idle) / total, double(p - 1) / (m + p - 1));
  }
  for (const RankReport& rank : r.ranks) {
    const int s = rank.coords.pp;
    if (gpipe)
      EXPECT_EQ(rank.peakStashed, m) << "stage " << s;
    else
      EXPECT_LE(rank.peakStashed, p - s) << "stage " << s;
    EXPECT_EQ(rank.memory.persistent[static_cast<int>(MemTag::kActivation)], 0) << "leak";
    // One Send (and Recv) of b*S*d floats per boundary per micro-batch each way.
    const CounterDelta d = counterDelta(rank, kPpGroup, 1, 2);
    const uint64_t boundary = 2 * Dims::kSeq * Dims::kWidth * sizeof(float);
    const uint64_t links = (s > 0) + (s < p - 1);
    EXPECT_EQ(d.calls[loomCollSend], links * m) << "stage " << s;
    EXPECT_EQ(d.calls[loomCollRecv], links * m) << "stage " << s;
    EXPECT_EQ(d.bytesSent[loomCollSend], links * m * boundary) << "stage " << s;
    std::printf("RESULT check8 pp%d %s stage %d peak_stashed %d\n", p, GetParam().schedule, s,
                rank.peakStashed);
  }
}

INSTANTIATE_TEST_SUITE_P(Schedules, Pipeline,
                         testing::Values(PipeCase{2, "gpipe"}, PipeCase{2, "1f1b"},
                                         PipeCase{4, "gpipe"}, PipeCase{4, "1f1b"}),
                         [](const testing::TestParamInfo<PipeCase>& i) {
                           return "Pp" + std::to_string(i.param.pp) +
                                  (i.param.schedule[0] == 'g' ? "Gpipe" : "OneFOneB");
                         });

TEST(Pipeline, GpipeAndOneFOneBAreBitIdenticalInFp64) {
  for (int p : {2, 4}) {
    RunResult g = runOrFail(configOf("--pp " + std::to_string(p) + " --schedule gpipe"));
    RunResult f = runOrFail(configOf("--pp " + std::to_string(p) + " --schedule 1f1b"));
    EXPECT_EQ(g.json, f.json);
    EXPECT_EQ(g.finalParams, f.finalParams) << "pp " << p;
  }
}

// ---- check 9: expert parallelism ----------------------------------------------------------

TEST(ExpertParallel, FourAllToAllPerMoeLayerPerMicroBatchAndExpertReplicasAgree) {
  struct Case {
    const char* flags;
    int m;
  };
  for (const Case c : {Case{"--moe --dp 2 --ep 2", 4}, Case{"--moe --dp 4 --ep 4", 2},
                       Case{"--moe --dp 4 --ep 2 --topk 2", 2}}) {
    RunOptions opt;
    opt.keepLocal = true;
    RunResult r = runOrFail(configOf(std::string(c.flags) + " --dtype f32", 3), opt);
    for (const RankReport& rank : r.ranks) {
      const CounterDelta d = counterDelta(rank, kEpGroup, 1, 2);
      EXPECT_EQ(d.calls[loomCollAllToAll], static_cast<uint64_t>(4 * 2 * c.m)) << c.flags;
      // The expert-DP group (same dp mod EP) holds the same experts, bit for bit.
      for (const RankReport& other : r.ranks)
        if (other.coords.ep == rank.coords.ep) {
          EXPECT_EQ(other.localExpert, rank.localExpert) << c.flags;
          EXPECT_EQ(other.localDense, rank.localDense) << c.flags;
        }
    }
    EXPECT_EQ(r.replicaMismatches, 0) << c.flags;
    std::printf("RESULT check9 %s alltoall_per_moe_layer_per_microbatch %.2f\n", c.flags,
                counterDelta(r.ranks[0], kEpGroup, 1, 2).calls[loomCollAllToAll] / (2.0 * c.m));
  }
}

// ---- check 10 (part): an overflow on one rank makes every rank skip -----------------------

TEST(MixedPrecision, OverflowOnOneRankSkipsTheStepEverywhereAndHalvesTheScale) {
  const std::string flags = "--dp 2 --tp 2 --dtype f32 --prec fp16";
  RunResult before = runOrFail(configOf(flags, 2));
  RunResult injected = runOrFail(configOf(flags + " --inject-overflow 3:1", 3));
  RunResult after = runOrFail(configOf(flags + " --inject-overflow 3:1", 4));
  ASSERT_EQ(injected.steps.size(), 3u);
  ASSERT_EQ(after.steps.size(), 4u);
  EXPECT_FALSE(injected.steps[1].skipped);
  EXPECT_TRUE(injected.steps[2].skipped);
  EXPECT_EQ(injected.finalParams, before.finalParams) << "a skipped step must change nothing";
  EXPECT_EQ(injected.replicaMismatches, 0) << "every rank must skip";
  EXPECT_EQ(after.steps[3].lossScale, after.steps[2].lossScale / 2);
  std::printf("RESULT check10 overflow step3 skipped %d scale %g -> %g params_unchanged %d\n",
              injected.steps[2].skipped, after.steps[2].lossScale, after.steps[3].lossScale,
              injected.finalParams == before.finalParams);
}

// ---- check 11: node locality ---------------------------------------------------------------

TEST(Hybrid, TensorParallelTrafficStaysInsideASimulatedNodeOfFour) {
  TrainConfig cfg = configOf("--dp 2 --tp 2 --pp 2 --dtype f32 --node-size 4", 2);
  RunResult r = runOrFail(cfg);
  ASSERT_EQ(r.ranks.size(), 8u);
  bool crossNode = false;
  for (const RankReport& rank : r.ranks) {
    const int node = rank.coords.rank / cfg.nodeSize;
    for (int peer : groupMembers(kTpGroup, rank.coords.rank, cfg))
      EXPECT_EQ(peer / cfg.nodeSize, node) << "TP group of rank " << rank.coords.rank;
    EXPECT_GT(counterDelta(rank, kTpGroup, 0, 2).totalSent(), 0u);
    for (int g : {kDpGroup, kPpGroup})
      for (int peer : groupMembers(static_cast<GroupKind>(g), rank.coords.rank, cfg))
        crossNode = crossNode || peer / cfg.nodeSize != node;
  }
  EXPECT_TRUE(crossNode) << "the layout must also have cross-node (DP or PP) groups";
}

// ---- check 12: determinism -----------------------------------------------------------------

TEST(Determinism, SameConfigTwiceGivesBitIdenticalJsonLogs) {
  for (const char* flags :
       {"--dp 2 --tp 2 --pp 2 --zero 1 --accum 2 --dtype f32 --prec bf16",
        "--dp 2 --tp 2 --sp --dtype f32 --prec fp16", "--moe --dp 4 --ep 2 --topk 2 --dtype f64",
        "--dp 3 --zero 3 --dtype f32"}) {
    RunResult a = runOrFail(configOf(flags, 10));
    RunResult b = runOrFail(configOf(flags, 10));
    EXPECT_FALSE(a.json.empty());
    EXPECT_EQ(a.json, b.json) << flags;
    EXPECT_EQ(a.finalParams, b.finalParams) << flags;
  }
}

}  // namespace
}  // namespace loom::trainer::test
