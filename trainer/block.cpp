#include "block.h"

#include <cstring>
#include <vector>

#include "config.h"
#include "kernels.h"

namespace loom::trainer {

namespace {

constexpr int kD = Dims::kWidth, kS = Dims::kSeq, kHd = Dims::kHeadDim;

template <typename T>
void track(BlockContext const& ctx, Tracked<T>* b, size_t n) {
  b->bind(ctx.memory, MemTag::kActivation);
  b->assign(n);
}

// LN into the full buffer `full` (via a local buffer and tpEnter with --sp).
template <typename T>
Status normAndEnter(const BlockContext& ctx, const T* x, const T* g, const T* b, Tracked<T>* mean,
                    Tracked<T>* rstd, Tracked<T>* full, int m, int ml) {
  track(ctx, mean, static_cast<size_t>(ml));
  track(ctx, rstd, static_cast<size_t>(ml));
  track(ctx, full, static_cast<size_t>(m) * kD);
  if (!ctx.tp.sp) {
    layerNormForward(x, g, b, full->data(), mean->data(), rstd->data(), ml, kD);
    roundInPlace(ctx.tp.prec, full->data(), full->size());
    return Status();
  }
  std::vector<T> local(static_cast<size_t>(ml) * kD);
  layerNormForward(x, g, b, local.data(), mean->data(), rstd->data(), ml, kD);
  roundInPlace(ctx.tp.prec, local.data(), local.size());
  return tpEnter(ctx.tp, local.data(), full->data(), m, kD);
}

}  // namespace

template <typename T>
Status blockForward(const BlockContext& ctx, const UnitWeights<T>& w, const T* x, T* y,
                    BlockStash<T>* st, double* auxLoss) {
  const int tpn = ctx.tp.group.size;
  const int m = ctx.batch * kS, ml = ctx.tp.localRows(m);
  const int wl = kD / tpn, fl = Dims::kFfn / tpn, hl = Dims::kHeads / tpn;
  const size_t nl = static_cast<size_t>(ml) * kD;
  track(ctx, &st->x, nl);
  std::memcpy(st->x.data(), x, nl * sizeof(T));
  Status s = normAndEnter(ctx, x, w.at[kLn1G], w.at[kLn1B], &st->mean1, &st->rstd1, &st->a1, m, ml);
  if (!s.ok()) return s;
  track(ctx, &st->qkv, static_cast<size_t>(m) * 3 * wl);
  matmul(st->a1.data(), w.at[kWqkv], w.at[kBqkv], st->qkv.data(), m, kD, 3 * wl, false);
  roundInPlace(ctx.tp.prec, st->qkv.data(), st->qkv.size());
  track(ctx, &st->probs, static_cast<size_t>(ctx.batch) * hl * kS * kS);
  track(ctx, &st->o, static_cast<size_t>(m) * wl);
  attentionForward(st->qkv.data(), st->o.data(), st->probs.data(), ctx.batch, kS, hl, kHd,
                   ctx.tp.prec);
  roundInPlace(ctx.tp.prec, st->o.data(), st->o.size());
  std::vector<T> partial(static_cast<size_t>(m) * kD), z(nl);
  s = rowLinearForward(ctx.tp, st->o.data(), w.at[kWo], w.at[kBo], partial.data(), z.data(), m, wl,
                       kD);
  if (!s.ok()) return s;
  track(ctx, &st->h, nl);
  for (size_t i = 0; i < nl; ++i)
    st->h[i] = x[i] + z[i];
  s = normAndEnter(ctx, st->h.data(), w.at[kLn2G], w.at[kLn2B], &st->mean2, &st->rstd2, &st->a2, m,
                   ml);
  if (!s.ok()) return s;
  if (ctx.isMoe) {
    MoeWeights<T> mw{w.at[kRouter], w.at[kEw1], w.at[kEb1], w.at[kEw2], w.at[kEb2]};
    s = moeForward(ctx.moe, mw, st->a2.data(), m, kD, z.data(), &st->moe, auxLoss);
  } else {
    track(ctx, &st->u, static_cast<size_t>(m) * fl);
    track(ctx, &st->g, static_cast<size_t>(m) * fl);
    matmul(st->a2.data(), w.at[kW1], w.at[kB1], st->u.data(), m, kD, fl, false);
    geluForward(st->u.data(), st->g.data(), st->g.size());
    roundInPlace(ctx.tp.prec, st->g.data(), st->g.size());
    s = rowLinearForward(ctx.tp, st->g.data(), w.at[kW2], w.at[kB2], partial.data(), z.data(), m,
                         fl, kD);
  }
  if (!s.ok()) return s;
  for (size_t i = 0; i < nl; ++i)
    y[i] = st->h[i] + z[i];
  return Status();
}

template <typename T>
Status blockBackward(const BlockContext& ctx, const UnitWeights<T>& w, const UnitGrads<T>& g,
                     const T* dy, T* dx, T lossScale, BlockStash<T>* st) {
  const int tpn = ctx.tp.group.size;
  const int m = ctx.batch * kS, ml = ctx.tp.localRows(m);
  const int wl = kD / tpn, fl = Dims::kFfn / tpn, hl = Dims::kHeads / tpn;
  const size_t nl = static_cast<size_t>(ml) * kD, nf = static_cast<size_t>(m) * kD;
  std::vector<T> dh(dy, dy + nl), full(nf), dxl(nl);
  Status s;
  if (ctx.isMoe) {
    MoeWeights<T> mw{w.at[kRouter], w.at[kEw1], w.at[kEb1], w.at[kEw2], w.at[kEb2]};
    MoeGrads<T> mg{g.at[kRouter], g.at[kEw1], g.at[kEb1], g.at[kEw2], g.at[kEb2]};
    s = moeBackward(ctx.moe, mw, mg, st->a2.data(), dy, kD, lossScale, &st->moe, dxl.data());
  } else {
    std::vector<T> dg(static_cast<size_t>(m) * fl), du(dg.size());
    s = rowLinearBackward(ctx.tp, st->g.data(), w.at[kW2], dy, full.data(), g.at[kW2], g.at[kB2],
                          dg.data(), m, fl, kD);
    if (!s.ok()) return s;
    geluBackward(st->u.data(), dg.data(), du.data(), du.size());
    s = columnLinearBackward(ctx.tp, st->a2.data(), w.at[kW1], du.data(), g.at[kW1], g.at[kB1],
                             full.data(), dxl.data(), m, kD, fl);
  }
  if (!s.ok()) return s;
  layerNormBackward(dxl.data(), st->h.data(), w.at[kLn2G], st->mean2.data(), st->rstd2.data(),
                    dh.data(), g.at[kLn2G], g.at[kLn2B], ml, kD);
  std::vector<T> dout(static_cast<size_t>(m) * wl), dqkv(static_cast<size_t>(m) * 3 * wl);
  s = rowLinearBackward(ctx.tp, st->o.data(), w.at[kWo], dh.data(), full.data(), g.at[kWo],
                        g.at[kBo], dout.data(), m, wl, kD);
  if (!s.ok()) return s;
  roundInPlace(ctx.tp.prec, dout.data(), dout.size());
  attentionBackward(st->qkv.data(), st->probs.data(), dout.data(), dqkv.data(), ctx.batch, kS, hl,
                    kHd, ctx.tp.prec);
  s = columnLinearBackward(ctx.tp, st->a1.data(), w.at[kWqkv], dqkv.data(), g.at[kWqkv],
                           g.at[kBqkv], full.data(), dxl.data(), m, kD, 3 * wl);
  if (!s.ok()) return s;
  std::memcpy(dx, dh.data(), nl * sizeof(T));
  layerNormBackward(dxl.data(), st->x.data(), w.at[kLn1G], st->mean1.data(), st->rstd1.data(), dx,
                    g.at[kLn1G], g.at[kLn1B], ml, kD);
  *st = BlockStash<T>();
  return Status();
}

template Status blockForward<float>(const BlockContext&, const UnitWeights<float>&, const float*,
                                    float*, BlockStash<float>*, double*);
template Status blockForward<double>(const BlockContext&, const UnitWeights<double>&, const double*,
                                     double*, BlockStash<double>*, double*);
template Status blockBackward<float>(const BlockContext&, const UnitWeights<float>&,
                                     const UnitGrads<float>&, const float*, float*, float,
                                     BlockStash<float>*);
template Status blockBackward<double>(const BlockContext&, const UnitWeights<double>&,
                                      const UnitGrads<double>&, const double*, double*, double,
                                      BlockStash<double>*);

}  // namespace loom::trainer
