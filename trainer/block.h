// block.h - one pre-LayerNorm decoder layer: h = x + Attn(LN1(x)), y = h + FFN(LN2(h)), where
// FFN is the dense MLP (d -> 128 -> d, GeLU) or the MoE layer, with tensor parallelism
// (heads and FFN columns split over TP, tp_ops.h) and its hand-written backward pass.
//
// A stash holds what backward needs for one micro-batch; blockForward fills it (charged to the
// activation account), blockBackward consumes and frees it.
#ifndef LOOM_TRAINER_BLOCK_H_
#define LOOM_TRAINER_BLOCK_H_

#include "memory.h"
#include "model_spec.h"
#include "moe.h"
#include "tp_ops.h"

namespace loom::trainer {

// Weight and gradient pointers of one unit, by slot (only the unit's slots are set).
template <typename T>
struct UnitWeights {
  const T* at[kNumSlots] = {};
};
template <typename T>
struct UnitGrads {
  T* at[kNumSlots] = {};
};

struct BlockContext {
  TpContext tp;
  MoeContext moe;
  bool isMoe = false;
  int batch = 0;  // sequences in the micro-batch (rows m = batch * kSeq)
  MemoryAccount* memory = nullptr;
};

template <typename T>
struct BlockStash {
  Tracked<T> x, mean1, rstd1, a1, qkv, probs, o, h, mean2, rstd2, a2, u, g;
  MoeStash<T> moe;
};

// y [localRows, d] from x [localRows, d]; *auxLoss += the MoE aux loss (MoE layers).
template <typename T>
Status blockForward(const BlockContext& ctx, const UnitWeights<T>& w, const T* x, T* y,
                    BlockStash<T>* st, double* auxLoss);
// dx [localRows, d] written from dy; gradients accumulate; the stash is freed.
template <typename T>
Status blockBackward(const BlockContext& ctx, const UnitWeights<T>& w, const UnitGrads<T>& g,
                     const T* dy, T* dx, T lossScale, BlockStash<T>* st);

}  // namespace loom::trainer

#endif  // LOOM_TRAINER_BLOCK_H_
