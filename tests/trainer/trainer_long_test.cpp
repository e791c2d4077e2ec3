// The 300-step checks of TRAINER.md (label trainer-long):
//   1. the fp64 base run's loss after 300 steps is <= 1.5 (the curve is printed and written to
//      trainer_loss_curve.jsonl in the working directory);
//   4. DP2 x TP2 x PP2 in fp32 against the fp32 base: mean of the last 50 losses within 1%;
//  10. bf16 with fp32 master weights and fp16 with dynamic loss scaling against fp32: step-1
//      loss within 1e-2 relative, mean of the last 50 losses within 5%.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "trainer_test_util.h"

namespace loom::trainer::test {
namespace {

constexpr int kSteps = 300;

TEST(ModelSanity, LossAfter300StepsIsAtMostOneAndAHalf) {
  RunResult r = runOrFail(configOf("--dtype f64", kSteps));
  ASSERT_EQ(r.steps.size(), static_cast<size_t>(kSteps));
  if (FILE* f = std::fopen("trainer_loss_curve.jsonl", "w")) {
    std::fputs(r.json.c_str(), f);
    std::fclose(f);
  }
  for (int s = 25; s <= kSteps; s += 25)
    std::printf("RESULT check1 curve step %d loss %.4f\n", s, r.steps[s - 1].loss);
  EXPECT_LE(r.steps.back().loss, 1.5);
}

TEST(LongRun, Fp32HybridLastFiftyLossesWithinOnePercentOfBase) {
  RunResult base = runOrFail(configOf("--dtype f32", kSteps));
  RunResult hybrid = runOrFail(configOf("--dp 2 --tp 2 --pp 2 --dtype f32", kSteps));
  ASSERT_EQ(hybrid.steps.size(), static_cast<size_t>(kSteps));
  const double want = meanLastLosses(base, 50), got = meanLastLosses(hybrid, 50);
  std::printf("RESULT check4 mean_last50 base %.6f dp2tp2pp2 %.6f rel %.3g\n", want, got,
              relDiff(got, want));
  EXPECT_LE(relDiff(got, want), 0.01);
}

TEST(MixedPrecision, Bf16MasterAndFp16LossScalingTrackFp32Over300Steps) {
  RunResult fp32 = runOrFail(configOf("--dtype f32", kSteps));
  for (const char* prec : {"bf16", "fp16"}) {
    RunResult r = runOrFail(configOf(std::string("--dtype f32 --prec ") + prec, kSteps));
    ASSERT_EQ(r.steps.size(), static_cast<size_t>(kSteps));
    const double step1 = relDiff(r.steps[0].loss, fp32.steps[0].loss);
    const double last = relDiff(meanLastLosses(r, 50), meanLastLosses(fp32, 50));
    int skipped = 0;
    for (const StepRecord& s : r.steps)
      skipped += s.skipped;
    std::printf(
        "RESULT check10 %s step1_rel %.3g mean_last50 %.6f vs fp32 %.6f rel %.3g skipped %d "
        "final_scale %g\n",
        prec, step1, meanLastLosses(r, 50), meanLastLosses(fp32, 50), last, skipped,
        r.steps.back().lossScale);
    EXPECT_LE(step1, 1e-2) << prec;
    EXPECT_LE(last, 0.05) << prec;
  }
}

}  // namespace
}  // namespace loom::trainer::test
