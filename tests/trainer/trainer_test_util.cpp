#include "trainer_test_util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "model_spec.h"

namespace loom::trainer::test {

TrainConfig configOf(const std::string& flags, int steps) {
  std::vector<std::string> words{"loom-train"};
  std::istringstream in(flags);
  for (std::string w; in >> w;)
    words.push_back(w);
  std::vector<const char*> argv;
  for (const std::string& w : words)
    argv.push_back(w.c_str());
  TrainConfig cfg;
  cfg.steps = steps;
  cfg.quiet = true;
  cfg.threads = true;
  Status s = parseArgs(static_cast<int>(argv.size()), argv.data(), &cfg);
  EXPECT_TRUE(s.ok()) << flags << ": " << s.message();
  return cfg;
}

RunResult runOrFail(const TrainConfig& cfg, const RunOptions& opt) {
  RunResult r;
  Status s = runThreads(cfg, opt, &r);
  EXPECT_TRUE(s.ok()) << describe(cfg) << ": " << s.message();
  if (!s.ok()) return RunResult();
  EXPECT_EQ(r.steps.size(), static_cast<size_t>(cfg.steps));
  return r;
}

double relF(const double* a, const double* b, size_t n) {
  double d = 0, ref = 0;
  for (size_t i = 0; i < n; ++i) {
    d += (a[i] - b[i]) * (a[i] - b[i]);
    ref += b[i] * b[i];
  }
  if (d == 0) return 0;
  return std::sqrt(d) / std::sqrt(ref);
}

double maxTensorRelF(const std::vector<double>& a, const std::vector<double>& b, bool moe) {
  EXPECT_EQ(a.size(), b.size());
  if (a.size() != b.size() || a.empty()) return INFINITY;
  double worst = 0;
  size_t off = 0;
  for (const TensorSpec& t : modelTensors(moe)) {
    worst = std::max(worst, relF(a.data() + off, b.data() + off, t.numel()));
    off += t.numel();
  }
  return worst;
}

double relDiff(double a, double b) {
  return a == b ? 0 : std::fabs(a - b) / std::fabs(b);
}

double maxLossRelDiff(const RunResult& a, const RunResult& b, int first, int last) {
  if (a.steps.size() < static_cast<size_t>(last) || b.steps.size() < static_cast<size_t>(last))
    return INFINITY;
  double worst = 0;
  for (int s = first; s <= last; ++s)
    worst = std::max(worst, relDiff(a.steps[s - 1].loss, b.steps[s - 1].loss));
  return worst;
}

double meanLastLosses(const RunResult& r, int n) {
  double sum = 0;
  for (size_t i = r.steps.size() - static_cast<size_t>(n); i < r.steps.size(); ++i)
    sum += r.steps[i].loss;
  return sum / n;
}

uint64_t CounterDelta::totalSent() const {
  uint64_t s = 0;
  for (uint64_t b : bytesSent)
    s += b;
  return s;
}

CounterDelta counterDelta(const RankReport& r, GroupKind g, int fromStep, int toStep) {
  CounterDelta d;
  const loomCounters_t& a = r.counters.at(static_cast<size_t>(fromStep))[g];
  const loomCounters_t& b = r.counters.at(static_cast<size_t>(toStep))[g];
  for (int c = 0; c < loomNumColls; ++c) {
    d.calls[c] = b.calls[c] - a.calls[c];
    d.bytesSent[c] = b.bytesSent[c] - a.bytesSent[c];
    d.bytesRecv[c] = b.bytesRecv[c] - a.bytesRecv[c];
  }
  return d;
}

uint64_t bytesSentAllGroups(const RankReport& r, int fromStep, int toStep) {
  uint64_t s = 0;
  for (int g = 0; g < kNumGroups; ++g)
    s += counterDelta(r, static_cast<GroupKind>(g), fromStep, toStep).totalSent();
  return s;
}

}  // namespace loom::trainer::test
