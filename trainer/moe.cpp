#include "moe.h"

#include <cmath>
#include <cstring>

#include "config.h"
#include "kernels.h"

namespace loom::trainer {

namespace {

template <typename T>
Routing route(const T* probs, int tokens, int experts, int topk, double capacityFactor) {
  Routing r;
  r.tokens = tokens;
  r.experts = experts;
  r.topk = topk;
  r.capacity = static_cast<int>(std::ceil(capacityFactor * topk * tokens / experts));
  r.expert.assign(static_cast<size_t>(tokens) * topk, -1);
  r.slot.assign(static_cast<size_t>(tokens) * topk, -1);
  r.chosen.assign(static_cast<size_t>(experts), 0);
  std::vector<int> fill(static_cast<size_t>(experts), 0);
  for (int t = 0; t < tokens; ++t) {
    const T* p = probs + static_cast<size_t>(t) * experts;
    for (int j = 0; j < topk; ++j) {
      int best = -1;
      for (int e = 0; e < experts; ++e) {
        bool taken = false;
        for (int jj = 0; jj < j; ++jj)
          taken = taken || r.expert[static_cast<size_t>(t) * topk + jj] == e;
        if (!taken && (best < 0 || p[e] > p[best])) best = e;
      }
      r.expert[static_cast<size_t>(t) * topk + j] = best;
      ++r.chosen[best];
      if (fill[best] < r.capacity) r.slot[static_cast<size_t>(t) * topk + j] = fill[best]++;
    }
  }
  return r;
}

template <typename T>
void softmaxRows(T* x, int rows, int n) {
  for (int i = 0; i < rows; ++i) {
    T* r = x + static_cast<size_t>(i) * n;
    T mx = r[0];
    for (int j = 1; j < n; ++j)
      if (r[j] > mx) mx = r[j];
    T s = 0;
    for (int j = 0; j < n; ++j) {
      r[j] = std::exp(r[j] - mx);
      s += r[j];
    }
    for (int j = 0; j < n; ++j)
      r[j] /= s;
  }
}

// Copies rows between the exchange layout [EP, El, C, d] and expert j's contiguous
// [EP * C, d] (toExpert) or back.
template <typename T>
void regroup(T* exchange, T* expert, int ep, int el, int j, int cap, int d, bool toExpert) {
  const size_t block = static_cast<size_t>(cap) * d;
  for (int q = 0; q < ep; ++q) {
    T* ex = exchange + (static_cast<size_t>(q) * el + j) * block;
    T* mine = expert + static_cast<size_t>(q) * block;
    if (toExpert)
      std::memcpy(mine, ex, block * sizeof(T));
    else
      std::memcpy(ex, mine, block * sizeof(T));
  }
}

}  // namespace

Routing routeTokens(const float* probs, int tokens, int experts, int topk, double cf) {
  return route(probs, tokens, experts, topk, cf);
}
Routing routeTokens(const double* probs, int tokens, int experts, int topk, double cf) {
  return route(probs, tokens, experts, topk, cf);
}

template <typename T>
Status moeDispatch(const MoeContext& ctx, const Routing& r, const T* x, int d, T* send, T* recv) {
  const size_t block = static_cast<size_t>(r.capacity) * d;
  std::memset(send, 0, sizeof(T) * block * r.experts);
  for (int t = 0; t < r.tokens; ++t)
    for (int j = 0; j < r.topk; ++j) {
      const size_t a = static_cast<size_t>(t) * r.topk + j;
      if (r.slot[a] < 0) continue;
      std::memcpy(send + r.expert[a] * block + static_cast<size_t>(r.slot[a]) * d,
                  x + static_cast<size_t>(t) * d, sizeof(T) * d);
    }
  return groupAllToAll(ctx.ep, send, recv, block * (r.experts / ctx.ep.size));
}

template <typename T>
Status moeReturn(const MoeContext& ctx, const Routing& r, const T* out, int d, T* back) {
  const size_t block = static_cast<size_t>(r.capacity) * d;
  return groupAllToAll(ctx.ep, out, back, block * (r.experts / ctx.ep.size));
}

template <typename T>
void moeCombine(const Routing& r, const T* probs, const T* back, int d, T* y) {
  const size_t block = static_cast<size_t>(r.capacity) * d;
  std::memset(y, 0, sizeof(T) * static_cast<size_t>(r.tokens) * d);
  for (int t = 0; t < r.tokens; ++t)
    for (int j = 0; j < r.topk; ++j) {
      const size_t a = static_cast<size_t>(t) * r.topk + j;
      if (r.slot[a] < 0) continue;
      const T gate = probs[static_cast<size_t>(t) * r.experts + r.expert[a]];
      const T* src = back + r.expert[a] * block + static_cast<size_t>(r.slot[a]) * d;
      T* dst = y + static_cast<size_t>(t) * d;
      for (int c = 0; c < d; ++c)
        dst[c] += gate * src[c];
    }
}

template <typename T>
Status moeForward(const MoeContext& ctx, const MoeWeights<T>& w, const T* x, int tokens, int d,
                  T* y, MoeStash<T>* st, double* auxLoss) {
  constexpr int kE = Dims::kExperts, kF = Dims::kExpertFfn;
  const int ep = ctx.ep.size, el = kE / ep;
  st->probs.bind(ctx.memory, MemTag::kActivation);
  st->probs.assign(static_cast<size_t>(tokens) * kE);
  matmul(x, w.router, static_cast<const T*>(nullptr), st->probs.data(), tokens, d, kE, false);
  softmaxRows(st->probs.data(), tokens, kE);
  st->routing = routeTokens(st->probs.data(), tokens, kE, ctx.topk, ctx.capacityFactor);
  const Routing& r = st->routing;
  double aux = 0;
  for (int e = 0; e < kE; ++e) {
    double pe = 0;
    for (int t = 0; t < tokens; ++t)
      pe += static_cast<double>(st->probs[static_cast<size_t>(t) * kE + e]);
    aux += static_cast<double>(r.chosen[e]) / (ctx.topk * tokens) * pe;
  }
  *auxLoss += ctx.auxWeight * aux;

  const size_t rows = static_cast<size_t>(ep) * r.capacity;  // per local expert
  std::vector<T> send(static_cast<size_t>(kE) * r.capacity * d), exch(send.size());
  Status s = moeDispatch(ctx, r, x, d, send.data(), exch.data());
  if (!s.ok()) return s;
  st->expertIn.bind(ctx.memory, MemTag::kActivation);
  st->hidden.bind(ctx.memory, MemTag::kActivation);
  st->act.bind(ctx.memory, MemTag::kActivation);
  st->expertIn.assign(el * rows * d);
  st->hidden.assign(el * rows * kF);
  st->act.assign(el * rows * kF);
  std::vector<T> out(rows * d);
  for (int j = 0; j < el; ++j) {
    T* in = st->expertIn.data() + j * rows * d;
    T* h = st->hidden.data() + j * rows * kF;
    T* a = st->act.data() + j * rows * kF;
    regroup(exch.data(), in, ep, el, j, r.capacity, d, true);
    matmul(in, w.w1 + static_cast<size_t>(j) * d * kF, w.b1 + static_cast<size_t>(j) * kF, h,
           static_cast<int>(rows), d, kF, false);
    geluForward(h, a, rows * kF);
    roundInPlace(ctx.prec, a, rows * kF);
    matmul(a, w.w2 + static_cast<size_t>(j) * kF * d, w.b2 + static_cast<size_t>(j) * d, out.data(),
           static_cast<int>(rows), kF, d, false);
    regroup(exch.data(), out.data(), ep, el, j, r.capacity, d, false);
  }
  st->back.bind(ctx.memory, MemTag::kActivation);
  st->back.assign(send.size());
  s = moeReturn(ctx, r, exch.data(), d, st->back.data());
  if (!s.ok()) return s;
  moeCombine(r, st->probs.data(), st->back.data(), d, y);
  return Status();
}

template <typename T>
Status moeBackward(const MoeContext& ctx, const MoeWeights<T>& w, const MoeGrads<T>& g, const T* x,
                   const T* dy, int d, T lossScale, MoeStash<T>* st, T* dx) {
  constexpr int kE = Dims::kExperts, kF = Dims::kExpertFfn;
  const Routing& r = st->routing;
  const int tokens = r.tokens, ep = ctx.ep.size, el = kE / ep;
  const size_t block = static_cast<size_t>(r.capacity) * d;
  const size_t rows = static_cast<size_t>(ep) * r.capacity;
  std::vector<T> dprobs(static_cast<size_t>(tokens) * kE);
  for (int t = 0; t < tokens; ++t)
    for (int e = 0; e < kE; ++e)
      dprobs[static_cast<size_t>(t) * kE + e] =
          static_cast<T>(ctx.auxWeight * r.chosen[e] / (ctx.topk * tokens)) * lossScale;
  std::vector<T> dback(block * kE, T(0)), exch(block * kE);
  for (int t = 0; t < tokens; ++t)
    for (int j = 0; j < r.topk; ++j) {
      const size_t a = static_cast<size_t>(t) * r.topk + j;
      if (r.slot[a] < 0) continue;
      const int e = r.expert[a];
      const T gate = st->probs[static_cast<size_t>(t) * kE + e];
      const T* out = st->back.data() + e * block + static_cast<size_t>(r.slot[a]) * d;
      T* dout = dback.data() + e * block + static_cast<size_t>(r.slot[a]) * d;
      const T* dyt = dy + static_cast<size_t>(t) * d;
      T dot = 0;
      for (int c = 0; c < d; ++c) {
        dot += dyt[c] * out[c];
        dout[c] = gate * dyt[c];
      }
      dprobs[static_cast<size_t>(t) * kE + e] += dot;
    }
  roundInPlace(ctx.prec, dback.data(), dback.size());
  Status s = groupAllToAll(ctx.ep, dback.data(), exch.data(), block * el);
  if (!s.ok()) return s;
  std::vector<T> dout(rows * d), dact(rows * kF), dh(rows * kF), din(rows * d);
  for (int j = 0; j < el; ++j) {
    const T* in = st->expertIn.data() + j * rows * d;
    const T* h = st->hidden.data() + j * rows * kF;
    const T* a = st->act.data() + j * rows * kF;
    const T* w1 = w.w1 + static_cast<size_t>(j) * d * kF;
    const T* w2 = w.w2 + static_cast<size_t>(j) * kF * d;
    regroup(exch.data(), dout.data(), ep, el, j, r.capacity, d, true);
    biasGrad(dout.data(), g.b2 + static_cast<size_t>(j) * d, static_cast<int>(rows), d);
    matmulGradWeight(a, dout.data(), g.w2 + static_cast<size_t>(j) * kF * d, static_cast<int>(rows),
                     kF, d);
    matmulGradInput(dout.data(), w2, dact.data(), static_cast<int>(rows), kF, d, false);
    geluBackward(h, dact.data(), dh.data(), rows * kF);
    roundInPlace(ctx.prec, dh.data(), dh.size());
    biasGrad(dh.data(), g.b1 + static_cast<size_t>(j) * kF, static_cast<int>(rows), kF);
    matmulGradWeight(in, dh.data(), g.w1 + static_cast<size_t>(j) * d * kF, static_cast<int>(rows),
                     d, kF);
    matmulGradInput(dh.data(), w1, din.data(), static_cast<int>(rows), d, kF, false);
    regroup(exch.data(), din.data(), ep, el, j, r.capacity, d, false);
  }
  s = groupAllToAll(ctx.ep, exch.data(), dback.data(), block * el);
  if (!s.ok()) return s;
  std::memset(dx, 0, sizeof(T) * static_cast<size_t>(tokens) * d);
  for (int t = 0; t < tokens; ++t)
    for (int j = 0; j < r.topk; ++j) {
      const size_t a = static_cast<size_t>(t) * r.topk + j;
      if (r.slot[a] < 0) continue;
      const T* src = dback.data() + r.expert[a] * block + static_cast<size_t>(r.slot[a]) * d;
      T* dst = dx + static_cast<size_t>(t) * d;
      for (int c = 0; c < d; ++c)
        dst[c] += src[c];
    }
  // Softmax backward to the router logits, then the router matmul.
  for (int t = 0; t < tokens; ++t) {
    const T* p = st->probs.data() + static_cast<size_t>(t) * kE;
    T* dp = dprobs.data() + static_cast<size_t>(t) * kE;
    T dot = 0;
    for (int e = 0; e < kE; ++e)
      dot += p[e] * dp[e];
    for (int e = 0; e < kE; ++e)
      dp[e] = p[e] * (dp[e] - dot);
  }
  roundInPlace(ctx.prec, dprobs.data(), dprobs.size());
  matmulGradWeight(x, dprobs.data(), g.router, tokens, d, kE);
  matmulGradInput(dprobs.data(), w.router, dx, tokens, d, kE, true);
  return Status();
}

#define LOOM_TRAINER_MOE(T)                                                                      \
  template Status moeDispatch<T>(const MoeContext&, const Routing&, const T*, int, T*, T*);      \
  template Status moeReturn<T>(const MoeContext&, const Routing&, const T*, int, T*);            \
  template void moeCombine<T>(const Routing&, const T*, const T*, int, T*);                      \
  template Status moeForward<T>(const MoeContext&, const MoeWeights<T>&, const T*, int, int, T*, \
                                MoeStash<T>*, double*);                                          \
  template Status moeBackward<T>(const MoeContext&, const MoeWeights<T>&, const MoeGrads<T>&,    \
                                 const T*, const T*, int, T, MoeStash<T>*, T*);
LOOM_TRAINER_MOE(float)
LOOM_TRAINER_MOE(double)
#undef LOOM_TRAINER_MOE

}  // namespace loom::trainer
