// trace.h - the per-rank schedule trace (stage, forward/backward, micro-batch) and the checks
// run on it: validity (every micro-batch once forward and once backward per stage, in an order
// that respects the pipeline's dependencies) and the idle fraction on a logical clock.
#ifndef LOOM_TRAINER_TRACE_H_
#define LOOM_TRAINER_TRACE_H_

#include <cstdint>
#include <string>
#include <vector>

namespace loom::trainer {

struct TraceEvent {
  int step = 0, round = 0, stage = 0;
  char kind = 'F';                 // 'F' forward, 'B' backward
  int mb = 0;                      // micro-batch index within the step
  int64_t startNs = 0, endNs = 0;  // steady clock, for the cross-stage order
};

// The events of one (step, round) of all stages: per stage, in the order each ran them.
using RoundTrace = std::vector<std::vector<TraceEvent>>;

// Empty when valid: each stage ran `m` forwards and `m` backwards of the micro-batches
// `mbs`, each backward after its forward, and (by the clocks) F(s, j) ended before F(s+1, j)
// started and B(s+1, j) ended before B(s, j) started.
std::string validateTrace(const RoundTrace& trace, const std::vector<int>& mbs);

// Replays each stage's order on a logical clock (forward 1, backward 2; an operation starts
// when its stage is free and its dependencies are done) and returns the idle time and the
// total (stages * makespan), so that idle / total is the idle fraction.
void logicalIdle(const RoundTrace& trace, int64_t* idle, int64_t* total);

}  // namespace loom::trainer

#endif  // LOOM_TRAINER_TRACE_H_
