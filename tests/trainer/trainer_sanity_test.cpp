// Check 1 of TRAINER.md (model sanity), the short parts: the step-1 loss is within 0.05 of
// ln 64, and fp64 gradients match finite differences on 32 random parameters (relative error
// <= 1e-6). The 300-step part is in trainer_long_test.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "rng.h"
#include "trainer.h"
#include "trainer_test_util.h"

namespace loom::trainer::test {
namespace {

TEST(ModelSanity, StepOneLossIsWithinFiveHundredthsOfLn64) {
  for (const char* flags : {"--dtype f64", "--dtype f32", "--moe --dtype f64"}) {
    RunResult r = runOrFail(configOf(flags, 1));
    ASSERT_EQ(r.steps.size(), 1u);
    std::printf("RESULT check1 step1_loss %s %.6f (ln 64 = %.6f)\n", flags, r.steps[0].loss,
                std::log(64.0));
    EXPECT_NEAR(r.steps[0].loss, std::log(64.0), 0.05) << flags;
  }
}

// One rank as one thread: enough for the loss function, and evaluate() leaves the parameters
// unchanged.
class OneRank {
 public:
  explicit OneRank(const TrainConfig& cfg) {
    std::vector<loom::Communicator> comms;
    ok_ = loom::Communicator::initAll(1, &comms).ok() &&
          makeGroups(std::move(comms[0]), cfg, &groups_).ok();
    if (!ok_) return;
    trainer_ = std::make_unique<Trainer<double>>(cfg, &groups_);
    ok_ = trainer_->init().ok();
  }
  bool ok() const { return ok_; }
  Trainer<double>& trainer() { return *trainer_; }

 private:
  bool ok_ = false;
  Groups groups_;
  std::unique_ptr<Trainer<double>> trainer_;
};

TEST(ModelSanity, Fp64GradientsMatchFiniteDifferencesOn32RandomParameters) {
  TrainConfig cfg = configOf("--dtype f64", 1);
  OneRank one(cfg);
  ASSERT_TRUE(one.ok());
  Trainer<double>& t = one.trainer();
  std::vector<double> params, grads;
  ASSERT_TRUE(t.gatherParams(&params, nullptr).ok());
  double loss0 = 0;
  ASSERT_TRUE(t.evaluate(0, &loss0, &grads).ok());
  ASSERT_EQ(grads.size(), params.size());
  // Fourth-order central differences: truncation O(h^4), rounding ~eps * loss / h ~ 1e-12.
  const double h = 1e-3;
  auto lossAt = [&](size_t i, double delta) {
    std::vector<double> p = params;
    p[i] += delta;
    double l = 0;
    EXPECT_TRUE(t.loadParams(p).ok());
    EXPECT_TRUE(t.evaluate(0, &l, nullptr).ok());
    return l;
  };
  double worst = 0;
  for (int k = 0; k < 32; ++k) {
    const size_t i = hashOf(2024, 1, k) % params.size();
    const double fd =
        (8 * (lossAt(i, h) - lossAt(i, -h)) - (lossAt(i, 2 * h) - lossAt(i, -2 * h))) / (12 * h);
    const double scale = std::max(std::fabs(fd), std::fabs(grads[i]));
    const double rel = scale == 0 ? 0 : std::fabs(fd - grads[i]) / scale;
    worst = std::max(worst, rel);
    EXPECT_LE(rel, 1e-6) << "parameter " << i << ": analytic " << grads[i] << ", numeric " << fd;
  }
  std::printf("RESULT check1 finite_difference max_rel_err %.3g over 32 parameters\n", worst);
}

}  // namespace
}  // namespace loom::trainer::test
