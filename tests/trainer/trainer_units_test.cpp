// Unit-level checks of the reference trainer: half-precision rounding, the parameter layout,
// the data, check 7's tensor-parallel ops against the full ops, check 9's dispatch/combine
// identity, check 10's bf16 negative control, and the init Gather round trip.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <ostream>
#include <thread>
#include <vector>

#include "data.h"
#include "half.h"
#include "kernels.h"
#include "model_spec.h"
#include "moe.h"
#include "optimizer.h"
#include "rng.h"
#include "tp_ops.h"
#include "trainer_test_util.h"

namespace loom::trainer::test {
namespace {

// ---- half precision ----------------------------------------------------------------------

TEST(HalfPrecision, Bf16RoundsToNearestEven) {
  EXPECT_EQ(roundBf16(1.0f), 1.0f);
  EXPECT_EQ(roundBf16(1.0f + 0x1p-8f), 1.0f);                // tie -> even
  EXPECT_EQ(roundBf16(1.0f + 3 * 0x1p-8f), 1.0f + 0x1p-6f);  // tie -> even
  EXPECT_EQ(roundBf16(1.0f + 0x1p-8f + 0x1p-20f), 1.0f + 0x1p-7f);
  EXPECT_EQ(roundBf16(1.0f - 1e-3f), 1.0f);  // below half the spacing: the negative control
  EXPECT_TRUE(std::isinf(roundBf16(3.4e38f)));
  EXPECT_TRUE(std::isnan(roundBf16(NAN)));
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = bf16BitsToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(floatToBf16Bits(f), h) << h;
  }
}

TEST(HalfPrecision, Fp16RoundsToNearestEvenWithSubnormalsAndOverflow) {
  EXPECT_EQ(roundFp16(65504.0f), 65504.0f);
  EXPECT_EQ(roundFp16(65519.0f), 65504.0f);
  EXPECT_TRUE(std::isinf(roundFp16(65520.0f)));
  EXPECT_EQ(roundFp16(0x1p-24f), 0x1p-24f);
  EXPECT_EQ(roundFp16(0x1p-25f), 0.0f);          // tie -> even (zero)
  EXPECT_EQ(roundFp16(3 * 0x1p-25f), 0x1p-23f);  // tie -> even
  EXPECT_EQ(roundFp16(1.0f + 0x1p-11f), 1.0f);   // tie -> even
  EXPECT_EQ(roundFp16(1.0f + 3 * 0x1p-11f), 1.0f + 0x1p-9f);
  EXPECT_EQ(roundFp16(-2.5f), -2.5f);
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16BitsToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(floatToFp16Bits(f), h) << h;
  }
}

// ---- model and data ------------------------------------------------------------------------

TEST(TinyGpt, HasTheSpecifiedParameterCount) {
  EXPECT_EQ(totalParams(modelTensors(false)), static_cast<size_t>(Dims::kParams));
  // MoE: layers 1 and 3 swap the 8,352-parameter MLP for a router and 4 experts.
  EXPECT_EQ(totalParams(modelTensors(true)),
            static_cast<size_t>(Dims::kParams - 2 * 8352 +
                                2 * (32 * 4 + 4 * (32 * 64 + 64 + 64 * 32 + 32))));
}

TEST(TinyGpt, ShardsReassembleEveryTensor) {
  for (const TensorSpec& t : modelTensors(true)) {
    std::vector<double> full(t.numel()), back(t.numel(), -1);
    for (size_t i = 0; i < full.size(); ++i)
      full[i] = static_cast<double>(i);
    for (int parts : {1, 2, 4}) {
      const size_t n = shardNumel(t, parts);
      std::vector<double> shard(n);
      for (int p = 0; p < parts; ++p) {
        extractShard(t, parts, p, full.data(), shard.data());
        insertShard(t, parts, p, shard.data(), back.data());
      }
      EXPECT_EQ(back, full) << t.name << " in " << parts << " parts";
    }
  }
}

TEST(Data, SequencesFollowTheirRecurrence) {
  static constexpr int kPairs[4][2] = {{5, 1}, {9, 7}, {13, 3}, {17, 11}};
  int32_t seq[Dims::kSeq];
  for (uint64_t i = 0; i < 200; ++i) {
    makeSequence(i, seq);
    int matches = 0;
    for (const auto& ac : kPairs) {
      bool ok = true;
      for (int t = 0; t + 1 < Dims::kSeq; ++t)
        ok = ok && seq[t + 1] == (ac[0] * seq[t] + ac[1]) % Dims::kVocab;
      matches += ok;
    }
    EXPECT_GE(matches, 1) << "sample " << i;
    EXPECT_EQ(seq[0], static_cast<int>(splitmix64(i) % Dims::kVocab));
  }
}

// ---- check 7: tensor-parallel ops equal the full ops ---------------------------------------

// Runs fn(rank, group) on n threads over loomCommInitAll communicators.
void onRanks(int n, const std::function<void(int, const Group&)>& fn) {
  std::vector<loom::Communicator> comms;
  ASSERT_TRUE(loom::Communicator::initAll(n, &comms).ok());
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r] { fn(r, Group::of(comms[r])); });
  for (auto& t : threads)
    t.join();
}

std::vector<float> randomVec(size_t n, uint64_t stream, double scale) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = static_cast<float>(scale * normalAt(99, stream, i));
  return v;
}

// Columns [c0, c0 + nc) of a row-major [rows, cols] matrix.
std::vector<float> cols(const std::vector<float>& a, int rows, int colsTotal, int c0, int nc) {
  std::vector<float> out(static_cast<size_t>(rows) * nc);
  for (int r = 0; r < rows; ++r)
    std::memcpy(&out[static_cast<size_t>(r) * nc], &a[static_cast<size_t>(r) * colsTotal + c0],
                sizeof(float) * nc);
  return out;
}
std::vector<float> rows(const std::vector<float>& a, int r0, int nr, int colsTotal) {
  return std::vector<float>(a.begin() + static_cast<long>(r0) * colsTotal,
                            a.begin() + static_cast<long>(r0 + nr) * colsTotal);
}

double maxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

struct TpCase {
  int tp;
  bool sp;
};

void PrintTo(const TpCase& c, std::ostream* os) {
  *os << "tp" << c.tp << (c.sp ? " sp" : "");
}

class TensorParallelOps : public testing::TestWithParam<TpCase> {};

constexpr double kTpTol = 1e-6;  // check 7: abs err <= 1e-6 in fp32

TEST_P(TensorParallelOps, ColumnAndRowLinearEqualTheFullOps) {
  const int tp = GetParam().tp, m = 32, k = 32, n = 128;
  const auto x = randomVec(m * k, 1, 1.0), w = randomVec(k * n, 2, 0.02), b = randomVec(n, 3, 0.02);
  const auto dy = randomVec(m * n, 4, 0.01);
  // Full column op: y = x w + b and its gradients.
  std::vector<float> y(m * n), dw(k * n, 0), db(n, 0), dx(m * k);
  matmul(x.data(), w.data(), b.data(), y.data(), m, k, n, false);
  matmulGradWeight(x.data(), dy.data(), dw.data(), m, k, n);
  biasGrad(dy.data(), db.data(), m, n);
  matmulGradInput(dy.data(), w.data(), dx.data(), m, k, n, false);
  // Full row op on w2 = w^T-shaped [n, k]: z = y w2 + b2.
  const auto w2 = randomVec(n * k, 5, 0.02), b2 = randomVec(k, 6, 0.02);
  const auto dz = randomVec(m * k, 7, 0.01);
  std::vector<float> z(m * k), dw2(n * k, 0), db2(k, 0), dyr(m * n);
  matmul(y.data(), w2.data(), b2.data(), z.data(), m, n, k, false);
  matmulGradWeight(y.data(), dz.data(), dw2.data(), m, n, k);
  biasGrad(dz.data(), db2.data(), m, k);
  matmulGradInput(dz.data(), w2.data(), dyr.data(), m, n, k, false);

  std::vector<double> worst(tp, 0);
  onRanks(tp, [&](int r, const Group& g) {
    TpContext ctx{g, GetParam().sp, Precision::kFp32};
    const int nl = n / tp, ml = ctx.localRows(m), r0 = ctx.firstLocalRow(m);
    double e = 0;
    // Column-parallel: local rows of x in, full rows of the column block out.
    auto xl = rows(x, r0, ml, k);
    std::vector<float> xf(m * k), yl(m * nl), dwl(k * nl, 0), dbl(nl, 0), dxf(m * k), dxl(ml * k);
    auto wl = cols(w, k, n, r * nl, nl), bl = cols(b, 1, n, r * nl, nl);
    EXPECT_TRUE(
        columnLinearForward(ctx, xl.data(), xf.data(), wl.data(), bl.data(), yl.data(), m, k, nl)
            .ok());
    e = std::max(e, maxAbsDiff(yl, cols(y, m, n, r * nl, nl)));
    auto dyl = cols(dy, m, n, r * nl, nl);
    EXPECT_TRUE(columnLinearBackward(ctx, xf.data(), wl.data(), dyl.data(), dwl.data(), dbl.data(),
                                     dxf.data(), dxl.data(), m, k, nl)
                    .ok());
    e = std::max(e, maxAbsDiff(dwl, cols(dw, k, n, r * nl, nl)));
    e = std::max(e, maxAbsDiff(dbl, cols(db, 1, n, r * nl, nl)));
    e = std::max(e, maxAbsDiff(dxl, rows(dx, r0, ml, k)));
    // Row-parallel: the column block of y in, local rows of z out.
    auto yin = cols(y, m, n, r * nl, nl), w2l = rows(w2, r * nl, nl, k);
    std::vector<float> partial(m * k), zl(ml * k), dw2l(nl * k, 0), db2l(k, 0), dyf(m * k),
        dyl2(m * nl);
    EXPECT_TRUE(rowLinearForward(ctx, yin.data(), w2l.data(), b2.data(), partial.data(), zl.data(),
                                 m, nl, k)
                    .ok());
    e = std::max(e, maxAbsDiff(zl, rows(z, r0, ml, k)));
    auto dzl = rows(dz, r0, ml, k);
    EXPECT_TRUE(rowLinearBackward(ctx, yin.data(), w2l.data(), dzl.data(), dyf.data(), dw2l.data(),
                                  db2l.data(), dyl2.data(), m, nl, k)
                    .ok());
    // With --sp the bias gradient is this rank's rows' share; the trainer sums it over TP.
    EXPECT_TRUE(groupAllReduce(g, db2l.data(), ctx.sp ? db2l.size() : 0).ok());
    e = std::max(e, maxAbsDiff(dw2l, rows(dw2, r * nl, nl, k)));
    e = std::max(e, maxAbsDiff(db2l, db2));
    e = std::max(e, maxAbsDiff(dyl2, cols(dyr, m, n, r * nl, nl)));
    worst[r] = e;
  });
  for (int r = 0; r < tp; ++r)
    EXPECT_LE(worst[r], kTpTol) << "rank " << r;
  std::printf("RESULT check7 linear tp%d%s max_abs_err %.3g\n", tp, GetParam().sp ? " sp" : "",
              *std::max_element(worst.begin(), worst.end()));
}

TEST_P(TensorParallelOps, VocabParallelEmbeddingAndCrossEntropyEqualTheFullOps) {
  const int tp = GetParam().tp, m = 64, d = Dims::kWidth, v = Dims::kVocab, s = Dims::kSeq;
  std::vector<int32_t> tokens(m), targets(m);
  for (int i = 0; i < m; ++i) {
    tokens[i] = static_cast<int32_t>(hashOf(5, 0, i) % v);
    targets[i] = i % s == s - 1 ? -1 : static_cast<int32_t>(hashOf(6, 0, i) % v);
  }
  const auto wte = randomVec(v * d, 8, 0.02), wpe = randomVec(s * d, 9, 0.02);
  const auto dout = randomVec(m * d, 10, 0.01), logits = randomVec(m * v, 11, 2.0);
  const float scale = 1.0f / 240;
  // Full ops: one rank, whole vocabulary.
  TpContext one{Group(), false, Precision::kFp32};
  std::vector<float> out(m * d), part(m * d), dwte(v * d, 0), dwpe(s * d, 0), full(m * d),
      dlog(m * v);
  ASSERT_TRUE(embeddingForward(one, tokens.data(), wte.data(), 0, v, wpe.data(), part.data(),
                               out.data(), m, d, s)
                  .ok());
  ASSERT_TRUE(embeddingBackward(one, tokens.data(), dout.data(), full.data(), dwte.data(), 0, v,
                                dwpe.data(), m, d, s)
                  .ok());
  double loss = 0;
  ASSERT_TRUE(
      crossEntropyForward(one, logits.data(), targets.data(), 0, v, m, scale, dlog.data(), &loss)
          .ok());
  std::vector<double> worst(tp, 0);
  onRanks(tp, [&](int r, const Group& g) {
    TpContext ctx{g, GetParam().sp, Precision::kFp32};
    const int vl = v / tp, ml = ctx.localRows(m), r0 = ctx.firstLocalRow(m);
    std::vector<float> o(ml * d), p(m * d), dw(vl * d, 0), dp(s * d, 0), f(m * d), dl(m * vl);
    auto wl = rows(wte, r * vl, vl, d);
    EXPECT_TRUE(embeddingForward(ctx, tokens.data(), wl.data(), r * vl, vl, wpe.data(), p.data(),
                                 o.data(), m, d, s)
                    .ok());
    double e = maxAbsDiff(o, rows(out, r0, ml, d));
    auto dl0 = rows(dout, r0, ml, d);
    EXPECT_TRUE(embeddingBackward(ctx, tokens.data(), dl0.data(), f.data(), dw.data(), r * vl, vl,
                                  dp.data(), m, d, s)
                    .ok());
    EXPECT_TRUE(groupAllReduce(g, dp.data(), ctx.sp ? dp.size() : 0).ok());
    e = std::max(e, maxAbsDiff(dw, rows(dwte, r * vl, vl, d)));
    e = std::max(e, maxAbsDiff(dp, dwpe));
    auto ll = cols(logits, m, v, r * vl, vl);
    double l = 0;
    EXPECT_TRUE(
        crossEntropyForward(ctx, ll.data(), targets.data(), r * vl, vl, m, scale, dl.data(), &l)
            .ok());
    e = std::max(e, std::fabs(l - loss) / 240);  // the mean loss
    e = std::max(e, maxAbsDiff(dl, cols(dlog, m, v, r * vl, vl)));
    worst[r] = e;
  });
  for (int r = 0; r < tp; ++r)
    EXPECT_LE(worst[r], kTpTol) << "rank " << r;
  std::printf("RESULT check7 embedding+ce tp%d%s max_abs_err %.3g\n", tp,
              GetParam().sp ? " sp" : "", *std::max_element(worst.begin(), worst.end()));
}

INSTANTIATE_TEST_SUITE_P(Tp, TensorParallelOps,
                         testing::Values(TpCase{2, false}, TpCase{4, false}, TpCase{2, true},
                                         TpCase{4, true}),
                         [](const testing::TestParamInfo<TpCase>& i) {
                           return "Tp" + std::to_string(i.param.tp) + (i.param.sp ? "Sp" : "");
                         });

// ---- check 9: combine(dispatch(x)) = gate * x for kept tokens, 0 for dropped ---------------

TEST(MoeDispatch, CombineOfDispatchIsGateTimesInputAndZeroWhenDropped) {
  const int tokens = 32, d = Dims::kWidth, e = Dims::kExperts;
  int dropped = 0, kept = 0;
  for (int ep : {1, 2, 4})
    for (int k : {1, 2}) {
      std::vector<int> drops(ep, 0), keeps(ep, 0);
      onRanks(ep, [&](int r, const Group& g) {
        MoeContext ctx;
        ctx.ep = g;
        ctx.topk = k;
        // Skewed router probabilities (expert 0 popular) so that capacity drops tokens.
        std::vector<float> probs(tokens * e), x = randomVec(tokens * d, 20 + r, 1.0);
        for (int t = 0; t < tokens; ++t) {
          float sum = 0;
          for (int i = 0; i < e; ++i) {
            probs[t * e + i] =
                std::exp(static_cast<float>(normalAt(30 + r, t, i)) + (i == 0 ? 1.5f : 0));
            sum += probs[t * e + i];
          }
          for (int i = 0; i < e; ++i)
            probs[t * e + i] /= sum;
        }
        const Routing rt = routeTokens(probs.data(), tokens, e, k, 1.25);
        std::vector<float> send(e * rt.capacity * d), recv(send.size()), back(send.size()),
            y(tokens * d);
        EXPECT_TRUE(moeDispatch(ctx, rt, x.data(), d, send.data(), recv.data()).ok());
        EXPECT_TRUE(moeReturn(ctx, rt, recv.data(), d, back.data()).ok());  // identity experts
        moeCombine(rt, probs.data(), back.data(), d, y.data());
        for (int t = 0; t < tokens; ++t) {
          for (int c = 0; c < d; ++c) {
            float want = 0;
            for (int j = 0; j < k; ++j)
              if (rt.slot[t * k + j] >= 0)
                want += probs[t * e + rt.expert[t * k + j]] * x[t * d + c];
            ASSERT_EQ(y[t * d + c], want) << "ep " << ep << " k " << k << " token " << t;
          }
          for (int j = 0; j < k; ++j)
            (rt.slot[t * k + j] < 0 ? drops[r] : keeps[r]) += 1;
        }
      });
      for (int r = 0; r < ep; ++r) {
        dropped += drops[r];
        kept += keeps[r];
      }
    }
  EXPECT_GT(dropped, 0) << "the test must exercise dropped tokens";
  EXPECT_GT(kept, 0);
}

// ---- check 10: bf16 without master weights loses updates below half the spacing -----------

TEST(MixedPrecision, PureBf16WeightIgnoresSmallUpdatesWhileMasterMovesWithinFourSteps) {
  AdamParams adam;
  adam.lr = 1e-3;  // Adam's first steps move a weight by ~lr: 1e-3 < 2^-9 (half the spacing)
  const float grad = 1.0f;
  float pure = 1.0f, pm = 0, pv = 0;
  for (int step = 1; step <= 10; ++step)
    adamUpdate(adam, step, 1.0f, &pure, &grad, &pm, &pv, 1, Precision::kBf16);
  EXPECT_EQ(pure, 1.0f) << "a bf16-stored weight must not move by updates of 1e-3";
  float master = 1.0f, mm = 0, mv = 0;
  int movedAt = 0;
  for (int step = 1; step <= 4 && !movedAt; ++step) {
    adamUpdate(adam, step, 1.0f, &master, &grad, &mm, &mv, 1);
    if (roundBf16(master) != 1.0f) movedAt = step;
  }
  EXPECT_GE(movedAt, 1) << "with an fp32 master the bf16 weight must move within 4 steps";
  std::printf(
      "RESULT check10 negative_control pure_bf16_after_10_steps %.9g master_moves_at_step %d\n",
      pure, movedAt);
}

// ---- init: Scatter/Broadcast from rank 0, Gather back, bit-exact ---------------------------

TEST(Init, GatherRoundTripReproducesTheModelBitExactly) {
  for (const char* flags : {"", "--dp 2 --tp 2 --pp 2", "--tp 4 --sp", "--dp 3 --zero 3",
                            "--moe --dp 4 --ep 4", "--moe --dp 2 --ep 2 --tp 2 --pp 2"})
    for (const char* dtype : {" --dtype f64", " --dtype f32"}) {
      TrainConfig cfg = configOf(std::string(flags) + dtype, 0);
      RunOptions opt;
      opt.gatherInitial = true;
      RunResult r = runOrFail(cfg, opt);
      const auto specs = modelTensors(cfg.moe);
      std::vector<double> want;
      if (cfg.fp64) {
        const auto m = buildFullModel<double>(specs, cfg.seed);
        want.assign(m.begin(), m.end());
      } else {
        const auto m = buildFullModel<float>(specs, cfg.seed);
        want.assign(m.begin(), m.end());
      }
      ASSERT_EQ(r.initialParams.size(), want.size()) << flags;
      EXPECT_EQ(std::memcmp(r.initialParams.data(), want.data(), want.size() * sizeof(double)), 0)
          << flags << dtype;
      EXPECT_EQ(r.finalParams, r.initialParams) << flags << dtype;
      EXPECT_EQ(r.replicaMismatches, 0) << flags << dtype;
    }
}

}  // namespace
}  // namespace loom::trainer::test
