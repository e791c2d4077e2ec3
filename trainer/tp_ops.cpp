#include "tp_ops.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels.h"

namespace loom::trainer {

namespace {

template <typename T>
void copyRows(const T* src, T* dst, size_t rows, size_t n) {
  if (src != dst) std::memcpy(dst, src, rows * n * sizeof(T));
}

}  // namespace

template <typename T>
Status tpEnter(const TpContext& ctx, const T* local, T* full, int m, int n) {
  if (!ctx.sp) {
    copyRows(local, full, static_cast<size_t>(m), static_cast<size_t>(n));
    return Status();
  }
  return groupAllGather(ctx.group, local, full, static_cast<size_t>(ctx.localRows(m)) * n);
}

template <typename T>
Status tpEnterBackward(const TpContext& ctx, T* full, T* local, int m, int n) {
  if (!ctx.sp) {
    Status s = groupAllReduce(ctx.group, full, static_cast<size_t>(m) * n);
    copyRows(full, local, static_cast<size_t>(m), static_cast<size_t>(n));
    return s;
  }
  return groupReduceScatter(ctx.group, full, local, static_cast<size_t>(ctx.localRows(m)) * n);
}

template <typename T>
Status tpExit(const TpContext& ctx, T* partial, T* local, int m, int n) {
  return tpEnterBackward(ctx, partial, local, m, n);
}

template <typename T>
Status tpExitBackward(const TpContext& ctx, const T* local, T* full, int m, int n) {
  return tpEnter(ctx, local, full, m, n);
}

template <typename T>
Status columnLinearForward(const TpContext& ctx, const T* x, T* xFull, const T* w, const T* b, T* y,
                           int m, int k, int nLocal) {
  Status s = tpEnter(ctx, x, xFull, m, k);
  if (!s.ok()) return s;
  matmul(xFull, w, b, y, m, k, nLocal, false);
  return Status();
}

template <typename T>
Status columnLinearBackward(const TpContext& ctx, const T* xFull, const T* w, T* dy, T* dw, T* db,
                            T* dxFull, T* dx, int m, int k, int nLocal) {
  roundInPlace(ctx.prec, dy, static_cast<size_t>(m) * nLocal);
  if (db) biasGrad(dy, db, m, nLocal);
  matmulGradWeight(xFull, dy, dw, m, k, nLocal);
  matmulGradInput(dy, w, dxFull, m, k, nLocal, false);
  return tpEnterBackward(ctx, dxFull, dx, m, k);
}

template <typename T>
Status rowLinearForward(const TpContext& ctx, const T* x, const T* w, const T* b, T* partial, T* y,
                        int m, int kLocal, int n) {
  matmul(x, w, static_cast<const T*>(nullptr), partial, m, kLocal, n, false);
  Status s = tpExit(ctx, partial, y, m, n);
  if (!s.ok()) return s;
  if (b) {
    const int rows = ctx.localRows(m);
    for (int i = 0; i < rows; ++i)
      for (int j = 0; j < n; ++j)
        y[static_cast<size_t>(i) * n + j] += b[j];
  }
  return Status();
}

template <typename T>
Status rowLinearBackward(const TpContext& ctx, const T* x, const T* w, const T* dy, T* dyFull,
                         T* dw, T* db, T* dx, int m, int kLocal, int n) {
  if (db) biasGrad(dy, db, ctx.localRows(m), n);
  Status s = tpExitBackward(ctx, dy, dyFull, m, n);
  if (!s.ok()) return s;
  roundInPlace(ctx.prec, dyFull, static_cast<size_t>(m) * n);
  matmulGradWeight(x, dyFull, dw, m, kLocal, n);
  matmulGradInput(dyFull, w, dx, m, kLocal, n, false);
  return Status();
}

template <typename T>
Status embeddingForward(const TpContext& ctx, const int32_t* tokens, const T* wte, int vBegin,
                        int vLocal, const T* wpe, T* partial, T* out, int m, int d, int seq) {
  for (int r = 0; r < m; ++r) {
    T* row = partial + static_cast<size_t>(r) * d;
    const int v = tokens[r] - vBegin;
    if (v >= 0 && v < vLocal)
      std::memcpy(row, wte + static_cast<size_t>(v) * d, sizeof(T) * d);
    else
      std::memset(row, 0, sizeof(T) * d);
  }
  Status s = tpExit(ctx, partial, out, m, d);
  if (!s.ok()) return s;
  const int rows = ctx.localRows(m), first = ctx.firstLocalRow(m);
  for (int r = 0; r < rows; ++r) {
    const T* p = wpe + static_cast<size_t>((first + r) % seq) * d;
    T* o = out + static_cast<size_t>(r) * d;
    for (int j = 0; j < d; ++j)
      o[j] += p[j];
  }
  return Status();
}

template <typename T>
Status embeddingBackward(const TpContext& ctx, const int32_t* tokens, const T* dout, T* dFull,
                         T* dwte, int vBegin, int vLocal, T* dwpe, int m, int d, int seq) {
  const int rows = ctx.localRows(m), first = ctx.firstLocalRow(m);
  for (int r = 0; r < rows; ++r) {
    T* p = dwpe + static_cast<size_t>((first + r) % seq) * d;
    const T* g = dout + static_cast<size_t>(r) * d;
    for (int j = 0; j < d; ++j)
      p[j] += g[j];
  }
  Status s = tpExitBackward(ctx, dout, dFull, m, d);
  if (!s.ok()) return s;
  for (int r = 0; r < m; ++r) {
    const int v = tokens[r] - vBegin;
    if (v < 0 || v >= vLocal) continue;
    T* w = dwte + static_cast<size_t>(v) * d;
    const T* g = dFull + static_cast<size_t>(r) * d;
    for (int j = 0; j < d; ++j)
      w[j] += g[j];
  }
  return Status();
}

template <typename T>
Status crossEntropyForward(const TpContext& ctx, const T* logits, const int32_t* targets,
                           int vBegin, int vLocal, int m, T gradScale, T* dlogits,
                           double* lossSum) {
  std::vector<T> mx(static_cast<size_t>(m)), sum(static_cast<size_t>(m)),
      tl(static_cast<size_t>(m));
  for (int r = 0; r < m; ++r) {
    const T* l = logits + static_cast<size_t>(r) * vLocal;
    T v = l[0];
    for (int j = 1; j < vLocal; ++j)
      if (l[j] > v) v = l[j];
    mx[r] = v;
    const int t = targets[r] - vBegin;
    tl[r] = targets[r] >= 0 && t >= 0 && t < vLocal ? l[t] : T(0);
  }
  Status s = groupAllReduce(ctx.group, mx.data(), mx.size(), loomMax);
  if (!s.ok()) return s;
  for (int r = 0; r < m; ++r) {
    const T* l = logits + static_cast<size_t>(r) * vLocal;
    T* e = dlogits + static_cast<size_t>(r) * vLocal;
    T acc = 0;
    for (int j = 0; j < vLocal; ++j) {
      e[j] = std::exp(l[j] - mx[r]);
      acc += e[j];
    }
    sum[r] = acc;
  }
  s = groupAllReduce(ctx.group, sum.data(), sum.size());
  if (!s.ok()) return s;
  s = groupAllReduce(ctx.group, tl.data(), tl.size());
  if (!s.ok()) return s;
  for (int r = 0; r < m; ++r) {
    T* e = dlogits + static_cast<size_t>(r) * vLocal;
    if (targets[r] < 0) {
      std::memset(e, 0, sizeof(T) * vLocal);
      continue;
    }
    *lossSum += static_cast<double>(std::log(sum[r]) + mx[r] - tl[r]);
    const T inv = T(1) / sum[r];
    for (int j = 0; j < vLocal; ++j)
      e[j] = e[j] * inv * gradScale;
    const int t = targets[r] - vBegin;
    if (t >= 0 && t < vLocal) e[t] -= gradScale;
  }
  return Status();
}

#define LOOM_TRAINER_TP(T)                                                                         \
  template Status tpEnter<T>(const TpContext&, const T*, T*, int, int);                            \
  template Status tpEnterBackward<T>(const TpContext&, T*, T*, int, int);                          \
  template Status tpExit<T>(const TpContext&, T*, T*, int, int);                                   \
  template Status tpExitBackward<T>(const TpContext&, const T*, T*, int, int);                     \
  template Status columnLinearForward<T>(const TpContext&, const T*, T*, const T*, const T*, T*,   \
                                         int, int, int);                                           \
  template Status columnLinearBackward<T>(const TpContext&, const T*, const T*, T*, T*, T*, T*,    \
                                          T*, int, int, int);                                      \
  template Status rowLinearForward<T>(const TpContext&, const T*, const T*, const T*, T*, T*, int, \
                                      int, int);                                                   \
  template Status rowLinearBackward<T>(const TpContext&, const T*, const T*, const T*, T*, T*, T*, \
                                       T*, int, int, int);                                         \
  template Status embeddingForward<T>(const TpContext&, const int32_t*, const T*, int, int,        \
                                      const T*, T*, T*, int, int, int);                            \
  template Status embeddingBackward<T>(const TpContext&, const int32_t*, const T*, T*, T*, int,    \
                                       int, T*, int, int, int);                                    \
  template Status crossEntropyForward<T>(const TpContext&, const T*, const int32_t*, int, int,     \
                                         int, T, T*, double*);
LOOM_TRAINER_TP(float)
LOOM_TRAINER_TP(double)
#undef LOOM_TRAINER_TP

}  // namespace loom::trainer
