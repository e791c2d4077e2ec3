// run.h - a whole training run: every rank as a thread of this process (tests, --threads) or
// this process as one rank of a launcher-started job (loomrun, mpirun). Collects what the
// checks read.
#ifndef LOOM_TRAINER_RUN_H_
#define LOOM_TRAINER_RUN_H_

#include <string>
#include <vector>

#include "config.h"
#include "layout.h"
#include "memory.h"
#include "trace.h"
#include "trainer.h"

namespace loom::trainer {

struct RunOptions {
  bool gatherInitial = false;      // RunResult::initialParams
  bool gatherFinal = true;         // RunResult::finalParams
  bool captureStep1Grads = false;  // RunResult::step1Grads
  bool keepLocal = false;          // RankReport::localDense / localExpert after the last step
  FILE* print = nullptr;           // world rank 0 prints the group table and a line per step here
};

// What one rank saw (thread runs fill one per rank; process runs only the caller's).
struct RankReport {
  Coords coords;
  std::vector<GroupCounters> counters;  // [0] after init, [s] after step s
  std::vector<TraceEvent> trace;
  MemoryReport memory;
  int peakStashed = 0;
  std::vector<double> localDense, localExpert;
};

struct RunResult {
  std::vector<StepRecord> steps;                               // world rank 0's records
  std::vector<double> initialParams, finalParams, step1Grads;  // canonical order
  int replicaMismatches = 0;  // tensors whose copies disagree across ranks (final gather)
  std::vector<RankReport> ranks;
  std::string json;  // the JSON lines of the run
};

// "rank stage step round F|B micro-batch start_ns end_ns" per event.
std::string traceText(const RankReport& r);
// A few lines: the rank's memory account and its bytes sent per group over the run.
std::string summaryText(const RankReport& r);

// All ranks as threads over loomCommInitAll. The first failing rank's Status is returned.
Status runThreads(const TrainConfig& cfg, const RunOptions& opt, RunResult* out);
// This process as one rank: loomCommInitEnv (the launcher's environment). World rank 0 fills
// the shared parts of *out; every rank fills out->ranks[0] with its own report.
Status runProcess(const TrainConfig& cfg, const RunOptions& opt, RunResult* out);

}  // namespace loom::trainer

#endif  // LOOM_TRAINER_RUN_H_
