// param_store.h - a rank's parameters, gradients and AdamW state, plain or sharded by ZeRO over
// the DP group, and the step's gradient reduction and update.
//
// Buckets: every unit of the layout (the embeddings, a layer, the final LN + head) is cut into
// near-equal buckets of at most ~16 KB. Bucket b of n elements is padded to N * c with
// c = ceil(n / N); DP rank r owns its elements [r c, r c + c) (the padding is owned by nobody:
// never updated, never in the norm). Every mode reduces gradients bucket by bucket in reverse
// order with the same ReduceScatter, so ZeRO-1/2 are bit-identical to plain DP by construction
// (a ring AllReduce would add the ranks in another order than a ring ReduceScatter does):
//   ZeRO-0 (plain DP): everything full; ReduceScatter + AllGather of each gradient bucket
//           (the bytes of a ring AllReduce: 2 (N-1)/N per element).
//   ZeRO-1: full params and grads, optimizer state of the owned shards; ReduceScatter the grads,
//           update the owned shards, AllGather the params.
//   ZeRO-2: as ZeRO-1 but only the owned gradient shards persist; the full gradients live
//           from the first backward of a step to their ReduceScatter.
//   ZeRO-3: params, grads and optimizer state all sharded; a unit's params are all-gathered
//           (one AllGather per unit) before its forward and again before its backward, its
//           grads reduce-scattered bucket by bucket after each micro-batch's backward.
// Expert tensors (MoE) are never sharded; their grads are AllReduced over the expert-DP group.
//
// One store per rank, used by that rank's thread only; the layout must outlive it. All
// collective calls happen in the same order on every rank of the groups involved.
#ifndef LOOM_TRAINER_PARAM_STORE_H_
#define LOOM_TRAINER_PARAM_STORE_H_

#include <vector>

#include "block.h"
#include "group.h"
#include "memory.h"
#include "model_spec.h"
#include "optimizer.h"

namespace loom::trainer {

struct StoreGroups {
  Group dp, edp, tp, world;
  int tpRank = 0, edpRank = 0;
};

struct UpdateStats {
  double gradNorm = 0;
  bool skipped = false;
};

template <typename T>
class ParamStore {
 public:
  ParamStore(const LocalLayout* layout, const TrainConfig& cfg, const StoreGroups& groups,
             MemoryAccount* memory);

  // Sets the local parameters (layout order; ZeRO-3 keeps only the owned shards).
  void load(const T* dense, const T* expert);
  // Before the first micro-batch of a step.
  void beginStep();
  // Compute weights of layout unit index ui, valid until releaseWeights(ui).
  Status acquireWeights(int ui, UnitWeights<T>* w);
  void releaseWeights(int ui);
  // Gradient accumulators of layout unit index ui, valid until releaseGrads(ui).
  Status acquireGrads(int ui, UnitGrads<T>* g);
  Status releaseGrads(int ui);

  // After the last micro-batch: DP / expert-DP reduction, the TP sum of replicated gradients
  // with --sp, and division by the loss scale.
  Status reduceGrads(double lossScale);
  // World-agreed overflow check (MAX), global norm, clip, AdamW, ZeRO AllGather; zeroes the
  // gradients. `inject` makes this rank see a non-finite gradient (test hook).
  Status update(bool inject, UpdateStats* stats);

  // Drops the step's gradients without an update (evaluation only).
  void discardGrads();

  // The full local parameters / reduced gradients in layout order, on every DP rank
  // (AllGather over DP where sharded). Gradients: between reduceGrads and update.
  Status fullParams(std::vector<T>* dense, std::vector<T>* expert);
  Status fullGrads(std::vector<T>* dense, std::vector<T>* expert);

 private:
  struct Bucket {
    size_t begin = 0, size = 0;             // dense flat range
    size_t chunk = 0, offset = 0;           // shard size and offset in the sharded buffers
    size_t ownedBegin = 0, ownedCount = 0;  // within the bucket
  };
  struct OwnedView {
    T *p, *g, *m, *v;
    const unsigned char *mask, *replicated;
    size_t n;
    bool countNorm;
  };
  template <typename F>
  void forEachOwned(F f);
  Status bucketAllReduce(const Group& g, T* data, size_t n);
  // out[chunk] <- this rank's shard of the DP sum of full[b.begin .. + b.size).
  Status reduceScatterBucket(const Bucket& b, const T* full, T* out);
  // full[b.begin .. + b.size) <- every rank's shard (this rank's at `shard`, ownedCount long).
  Status allGatherBucket(const Bucket& b, const T* shard, T* full);
  // ZeRO-3: the full parameters of layout unit ui into out (one AllGather).
  Status allGatherUnit(int ui, T* out);
  Status sumReplicatedOverTp();
  void resolve(int ui, const T* dense, const T* expert, UnitWeights<T>* w) const;

  const LocalLayout* layout_;
  TrainConfig cfg_;
  StoreGroups groups_;
  MemoryAccount* memory_;
  AdamParams adam_;
  int zero_ = 0, step_ = 0;
  std::vector<Bucket> buckets_;
  std::vector<std::pair<size_t, size_t>> unitBuckets_;  // [first, last) bucket of each unit
  std::vector<unsigned char> replicated_;               // dense element of a TP-replicated tensor
  Tracked<T> params_, grads_, m_, v_, fullGrads_;
  Tracked<T> eParams_, eGrads_, eM_, eV_;
  Tracked<T> computeDense_, computeExpert_;  // half-precision copies, per step
  std::vector<Tracked<T>> unitW_, unitG_;    // ZeRO-3 transients
};

}  // namespace loom::trainer

#endif  // LOOM_TRAINER_PARAM_STORE_H_
