// stage.h - the part of TinyGPT one pipeline stage runs for one micro-batch: the embeddings
// (stage 0), its layers, and the final LayerNorm, vocabulary-parallel head and cross-entropy
// (last stage). Activations for backward are stashed per micro-batch; the count of stashed
// micro-batches (and its peak) is what the schedule checks read.
//
// Boundary activations are [localRows, d] (localRows = tokens, or tokens / TP with --sp).
// One StageModel per rank, used by its thread only; the store and layout must outlive it.
#ifndef LOOM_TRAINER_STAGE_H_
#define LOOM_TRAINER_STAGE_H_

#include <map>
#include <memory>
#include <vector>

#include "block.h"
#include "data.h"
#include "param_store.h"

namespace loom::trainer {

struct StageContext {
  TpContext tp;
  MoeContext moe;
  MemoryAccount* memory = nullptr;
  bool moeModel = false;
  bool first = true, last = true;
};

template <typename T>
class StageModel {
 public:
  StageModel(const StageContext& ctx, const LocalLayout* layout, ParamStore<T>* store);

  // Elements of the boundary activation of a micro-batch.
  size_t boundaryElems(const MicroBatch& mb) const;
  // in: the previous stage's output (ignored on the first stage); out: to the next stage
  // (ignored on the last). *loss += the micro-batch's loss (cross-entropy sum / global token
  // count on the last stage, plus MoE aux losses).
  Status forward(const MicroBatch& mb, const T* in, T* out, double* loss);
  // dout: from the next stage (ignored on the last); din: to the previous (ignored on the first).
  Status backward(const MicroBatch& mb, const T* dout, T* din);

  // Scales of the step: gradient of the loss sum per token (lossScale / global tokens).
  void setLossScale(double lossScale);
  int stashed() const { return static_cast<int>(stash_.size()); }
  int peakStashed() const { return peakStashed_; }

 private:
  struct Micro {
    std::vector<int32_t> tokens, targets;
    std::vector<BlockStash<T>> blocks;
    Tracked<T> xf, meanf, rstdf, af, dlogits;
  };
  Status forwardFinal(const UnitWeights<T>& w, Micro* st, const T* x, int m, double* loss);
  Status backwardFinal(const UnitWeights<T>& w, const UnitGrads<T>& g, Micro* st, T* dx, int m);
  BlockContext blockContext(int unit, int batch) const;

  StageContext ctx_;
  const LocalLayout* layout_;
  ParamStore<T>* store_;
  double lossScale_ = 1.0;
  std::map<int, std::unique_ptr<Micro>> stash_;
  int peakStashed_ = 0;
};

}  // namespace loom::trainer

#endif  // LOOM_TRAINER_STAGE_H_
