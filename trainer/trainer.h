// trainer.h - one rank of a training run: builds its groups' view, receives its part of the
// model from world rank 0, runs optimizer steps (schedule -> reduce -> update), and reports
// what the checks need (loss, grad norm, loss scale, counters, trace, memory, gathered state).
//
// Every inter-rank byte goes through loom: Scatter/Broadcast at init, the collectives of the
// parallel modes, Send/Recv between pipeline stages, Gather for the canonical state.
// A Trainer is used by one thread; all ranks of the world call the same methods in the same
// order (each method is collective over the world).
#ifndef LOOM_TRAINER_TRAINER_H_
#define LOOM_TRAINER_TRAINER_H_

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "layout.h"
#include "memory.h"
#include "model_spec.h"
#include "optimizer.h"
#include "param_store.h"
#include "stage.h"
#include "trace.h"

namespace loom::trainer {

struct StepRecord {
  int step = 0;  // 1-based
  double loss = 0, gradNorm = 0, lossScale = 1;
  bool skipped = false;
};

// One JSON line: {"step":1,"loss":...,"grad_norm":...,"loss_scale":...,"skipped":false}
std::string jsonLine(const StepRecord& r);

using GroupCounters = std::array<loomCounters_t, kNumGroups>;

// The full model in canonical order as world rank 0 builds it: N(0, 0.02) from a counter-based
// RNG keyed by (seed, tensor, element); LayerNorm gains 1; biases 0.
template <typename T>
std::vector<T> buildFullModel(const std::vector<TensorSpec>& specs, uint64_t seed);

template <typename T>
class Trainer {
 public:
  Trainer(const TrainConfig& cfg, Groups* groups);
  // Collective: layout, storage, and the model from world rank 0 (Scatter / Broadcast).
  Status init();
  // Collective: optimizer step `step` (0-based sample window). With grads != nullptr, world
  // rank 0 receives the reduced, unclipped gradients in canonical order.
  Status step(int step, StepRecord* rec, std::vector<double>* grads = nullptr);
  // Collective: loss (and, with grads, the reduced gradients on world rank 0, canonical order)
  // of the batch of `step` at the current parameters, without an update.
  Status evaluate(int step, double* loss, std::vector<double>* grads);
  // Collective: replaces the parameters by `canonical` (read on world rank 0 only).
  Status loadParams(const std::vector<double>& canonical);
  // Collective: the parameters in canonical order on world rank 0 (Gather); *mismatches
  // counts tensors whose replicas differ between ranks (0 when every copy agrees).
  Status gatherParams(std::vector<double>* out, int* mismatches);

  const std::vector<TraceEvent>& trace() const { return trace_; }
  const MemoryAccount& memory() const { return memory_; }
  int peakStashed() const { return stage_ ? stage_->peakStashed() : 0; }
  GroupCounters counters() const;
  const LocalLayout& layout() const { return layout_; }
  Status localParams(std::vector<T>* dense, std::vector<T>* expert) {
    return store_->fullParams(dense, expert);
  }

 private:
  Status forwardBackward(int step, double* loss);
  Status distribute(const std::vector<T>& full, std::vector<T>* dense, std::vector<T>* expert);
  Status gatherCanonical(const std::vector<T>& dense, const std::vector<T>& expert,
                         std::vector<double>* out, int* mismatches);

  TrainConfig cfg_;
  Groups* groups_;
  Coords me_;
  LocalLayout layout_;
  MemoryAccount memory_;
  Group world_, tp_, dp_, pp_, ep_, edp_;
  std::unique_ptr<ParamStore<T>> store_;
  std::unique_ptr<StageModel<T>> stage_;
  LossScaler scaler_{false, 1.0, 1};
  std::vector<TraceEvent> trace_;
};

}  // namespace loom::trainer

#endif  // LOOM_TRAINER_TRAINER_H_
