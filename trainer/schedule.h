// schedule.h - pipeline schedules over the PP group: GPipe (all forwards, then all backwards)
// and 1F1B (PipeDream-flush as in Megatron: PP - s - 1 warm-up forwards on stage s, then
// one forward / one backward, then the cool-down backwards). Boundary tensors move with
// loomSend/loomRecv; a send and a receive that must progress together are one group.
#ifndef LOOM_TRAINER_SCHEDULE_H_
#define LOOM_TRAINER_SCHEDULE_H_

#include <vector>

#include "config.h"
#include "group.h"
#include "stage.h"
#include "trace.h"

namespace loom::trainer {

// Runs forward and backward of `mbs` (one accumulation round) on this rank's stage; appends
// this stage's events to *trace (tagged step/round). *loss += the micro-batches' losses.
template <typename T>
Status runSchedule(Schedule kind, const Group& pp, StageModel<T>* stage,
                   const std::vector<MicroBatch>& mbs, int step, int round,
                   std::vector<TraceEvent>* trace, double* loss);

}  // namespace loom::trainer

#endif  // LOOM_TRAINER_SCHEDULE_H_
