// trainer_test_util.h - running the reference trainer in tests (ranks as threads) and the
// comparisons of TRAINER.md (relF, relative loss differences).
#ifndef LOOM_TESTS_TRAINER_TRAINER_TEST_UTIL_H_
#define LOOM_TESTS_TRAINER_TRAINER_TEST_UTIL_H_

#include <string>
#include <vector>

#include "run.h"

namespace loom::trainer::test {

// A configuration from command-line flags ("--dp 2 --tp 2"), on top of quiet defaults with
// `steps` steps. Fails the test on a parse error.
TrainConfig configOf(const std::string& flags, int steps = 20);
// Runs cfg with ranks as threads; fails the test (and returns an empty result) on error.
RunResult runOrFail(const TrainConfig& cfg, const RunOptions& opt = RunOptions());

// ||a - b||_F / ||b||_F (0 when both are zero).
double relF(const double* a, const double* b, size_t n);
// The largest relF over the tensors of the canonical list (a and b in canonical order).
double maxTensorRelF(const std::vector<double>& a, const std::vector<double>& b, bool moe);
double relDiff(double a, double b);
// The largest relative loss difference over steps [first, last] (1-based).
double maxLossRelDiff(const RunResult& a, const RunResult& b, int first, int last);
// Mean loss of the last n steps.
double meanLastLosses(const RunResult& r, int n);

// Delta of a counter between two snapshots of rank `rank`'s group g.
struct CounterDelta {
  uint64_t calls[loomNumColls] = {}, bytesSent[loomNumColls] = {}, bytesRecv[loomNumColls] = {};
  uint64_t totalSent() const;
};
CounterDelta counterDelta(const RankReport& r, GroupKind g, int fromStep, int toStep);
// Total bytes the rank sent over all its groups between the snapshots.
uint64_t bytesSentAllGroups(const RankReport& r, int fromStep, int toStep);

}  // namespace loom::trainer::test

#endif  // LOOM_TESTS_TRAINER_TRAINER_TEST_UTIL_H_
