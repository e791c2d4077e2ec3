// tp_ops.h - Megatron tensor parallelism over the TP group, optionally sequence parallel.
//
// Vocabulary. A "full" activation has all m rows of the micro-batch; a "local" one has the
// rows this rank keeps between the parallel regions: all m rows without --sp, the rank's
// m/TP contiguous rows with --sp. enter() turns local rows into the full input of a
// column-parallel region (identity, or AllGather with --sp); its backward sums the partial
// input gradients (AllReduce, or ReduceScatter with --sp). exit() turns the partial outputs of
// a row-parallel region into local rows (AllReduce, or ReduceScatter with --sp); its backward
// is identity (or AllGather with --sp). So a layer costs 2 AllReduce forward and 2 backward,
// or the same number of AllGather/ReduceScatter pairs with --sp.
//
// All functions are called by every rank of the TP group in the same order; they block.
// Matmul inputs are rounded to ctx.prec where a half-precision run would store them.
#ifndef LOOM_TRAINER_TP_OPS_H_
#define LOOM_TRAINER_TP_OPS_H_

#include <cstdint>

#include "group.h"
#include "half.h"

namespace loom::trainer {

struct TpContext {
  Group group;  // the TP group (size 1 without TP)
  bool sp = false;
  Precision prec = Precision::kFp32;
  int localRows(int m) const { return sp ? m / group.size : m; }
  int firstLocalRow(int m) const { return sp ? group.rank * (m / group.size) : 0; }
};

// full[m, n] <- local rows (copy without --sp; full may equal local then).
template <typename T>
Status tpEnter(const TpContext& ctx, const T* local, T* full, int m, int n);
// local[localRows, n] <- this rank's rows of the sum of every rank's full[m, n]; full is
// clobbered. Without --sp local may equal full; with --sp they must not overlap.
template <typename T>
Status tpEnterBackward(const TpContext& ctx, T* full, T* local, int m, int n);
// local[localRows, n] <- reduced partial[m, n]; partial is clobbered (same aliasing rule).
template <typename T>
Status tpExit(const TpContext& ctx, T* partial, T* local, int m, int n);
// full[m, n] <- local gradient rows (copy without --sp).
template <typename T>
Status tpExitBackward(const TpContext& ctx, const T* local, T* full, int m, int n);

// Column-parallel linear: xFull = enter(x); y[m, nLocal] = xFull w + b. xFull [m, k] is kept
// by the caller for backward (it may equal x without --sp).
template <typename T>
Status columnLinearForward(const TpContext& ctx, const T* x, T* xFull, const T* w, const T* b, T* y,
                           int m, int k, int nLocal);
// dy [m, nLocal] is rounded in place; dw, db accumulate; dxFull [m, k] is scratch; dx
// [localRows, k] receives the input gradient (written).
template <typename T>
Status columnLinearBackward(const TpContext& ctx, const T* xFull, const T* w, T* dy, T* dw, T* db,
                            T* dxFull, T* dx, int m, int k, int nLocal);
// Row-parallel linear: y[localRows, n] = exit(x w) + b; x [m, kLocal]; partial [m, n] scratch.
template <typename T>
Status rowLinearForward(const TpContext& ctx, const T* x, const T* w, const T* b, T* partial, T* y,
                        int m, int kLocal, int n);
// dy local rows; dyFull [m, n] scratch (rounded); dx [m, kLocal] written.
template <typename T>
Status rowLinearBackward(const TpContext& ctx, const T* x, const T* w, const T* dy, T* dyFull,
                         T* dw, T* db, T* dx, int m, int kLocal, int n);

// Vocabulary-parallel embedding: this rank holds rows [vBegin, vBegin + vLocal) of wte.
// out[localRows, d] = exit(lookup) + wpe[position]; partial [m, d] scratch. Row r of the
// micro-batch is position r mod seq.
template <typename T>
Status embeddingForward(const TpContext& ctx, const int32_t* tokens, const T* wte, int vBegin,
                        int vLocal, const T* wpe, T* partial, T* out, int m, int d, int seq);
// dout local rows; dFull [m, d] scratch; dwte (local rows) and dwpe accumulate. With --sp,
// dwpe holds only this rank's rows' share (summed over TP later).
template <typename T>
Status embeddingBackward(const TpContext& ctx, const int32_t* tokens, const T* dout, T* dFull,
                         T* dwte, int vBegin, int vLocal, T* dwpe, int m, int d, int seq);

// Vocabulary-parallel cross-entropy over full rows: logits [m, vLocal] of vocabulary
// [vBegin, vBegin + vLocal). Three AllReduces (max, sum of exp, target logit). Rows with
// target < 0 carry no loss. dlogits = (softmax - onehot) * gradScale; *lossSum += the sum of
// the rows' losses.
template <typename T>
Status crossEntropyForward(const TpContext& ctx, const T* logits, const int32_t* targets,
                           int vBegin, int vLocal, int m, T gradScale, T* dlogits, double* lossSum);

}  // namespace loom::trainer

#endif  // LOOM_TRAINER_TP_OPS_H_
