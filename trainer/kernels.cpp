#include "kernels.h"

#include <cmath>
#include <cstring>
#include <vector>

namespace loom::trainer {

namespace {

template <typename T>
T* scratch(size_t n) {
  thread_local std::vector<T> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

// y0..y3 (+)= a_r * w over n columns: the inner loop of every matmul (vectorises).
template <typename T>
inline void axpy4(T* __restrict y0, T* __restrict y1, T* __restrict y2, T* __restrict y3,
                  const T* __restrict w, T a0, T a1, T a2, T a3, int n) {
  for (int j = 0; j < n; ++j) {
    const T wj = w[j];
    y0[j] += a0 * wj;
    y1[j] += a1 * wj;
    y2[j] += a2 * wj;
    y3[j] += a3 * wj;
  }
}

template <typename T>
inline void axpy1(T* __restrict y, const T* __restrict w, T a, int n) {
  for (int j = 0; j < n; ++j)
    y[j] += a * w[j];
}

template <typename T>
void initRow(T* y, const T* bias, int n, bool accumulate) {
  if (accumulate) return;
  if (bias)
    std::memcpy(y, bias, sizeof(T) * static_cast<size_t>(n));
  else
    std::memset(y, 0, sizeof(T) * static_cast<size_t>(n));
}

template <typename T>
void transpose(const T* a, T* at, int rows, int cols) {
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j)
      at[static_cast<size_t>(j) * rows + i] = a[static_cast<size_t>(i) * cols + j];
}

}  // namespace

template <typename T>
void matmul(const T* x, const T* w, const T* bias, T* y, int m, int k, int n, bool accumulate) {
  int i = 0;
  for (; i + 4 <= m; i += 4) {
    T* y0 = y + static_cast<size_t>(i) * n;
    T* y1 = y0 + n;
    T* y2 = y1 + n;
    T* y3 = y2 + n;
    initRow(y0, bias, n, accumulate);
    initRow(y1, bias, n, accumulate);
    initRow(y2, bias, n, accumulate);
    initRow(y3, bias, n, accumulate);
    const T* x0 = x + static_cast<size_t>(i) * k;
    for (int kk = 0; kk < k; ++kk)
      axpy4(y0, y1, y2, y3, w + static_cast<size_t>(kk) * n, x0[kk], x0[k + kk], x0[2 * k + kk],
            x0[3 * k + kk], n);
  }
  for (; i < m; ++i) {
    T* yi = y + static_cast<size_t>(i) * n;
    initRow(yi, bias, n, accumulate);
    for (int kk = 0; kk < k; ++kk)
      axpy1(yi, w + static_cast<size_t>(kk) * n, x[static_cast<size_t>(i) * k + kk], n);
  }
}

template <typename T>
void matmulGradInput(const T* dy, const T* w, T* dx, int m, int k, int n, bool accumulate) {
  T* wt = scratch<T>(static_cast<size_t>(k) * n);
  transpose(w, wt, k, n);
  matmul<T>(dy, wt, nullptr, dx, m, n, k, accumulate);
}

template <typename T>
void matmulGradWeight(const T* x, const T* dy, T* dw, int m, int k, int n) {
  T* xt = scratch<T>(static_cast<size_t>(k) * m);
  transpose(x, xt, m, k);
  matmul<T>(xt, dy, nullptr, dw, k, m, n, true);
}

template <typename T>
void biasGrad(const T* dy, T* db, int m, int n) {
  for (int i = 0; i < m; ++i)
    axpy1(db, dy + static_cast<size_t>(i) * n, T(1), n);
}

template <typename T>
void layerNormForward(const T* x, const T* g, const T* b, T* y, T* mean, T* rstd, int m, int n) {
  const T eps = T(1e-5);
  for (int i = 0; i < m; ++i) {
    const T* xi = x + static_cast<size_t>(i) * n;
    T* yi = y + static_cast<size_t>(i) * n;
    T s = 0;
    for (int j = 0; j < n; ++j)
      s += xi[j];
    const T mu = s / T(n);
    T v = 0;
    for (int j = 0; j < n; ++j)
      v += (xi[j] - mu) * (xi[j] - mu);
    const T r = T(1) / std::sqrt(v / T(n) + eps);
    for (int j = 0; j < n; ++j)
      yi[j] = (xi[j] - mu) * r * g[j] + b[j];
    mean[i] = mu;
    rstd[i] = r;
  }
}

template <typename T>
void layerNormBackward(const T* dy, const T* x, const T* g, const T* mean, const T* rstd, T* dx,
                       T* dg, T* db, int m, int n) {
  for (int i = 0; i < m; ++i) {
    const T* xi = x + static_cast<size_t>(i) * n;
    const T* dyi = dy + static_cast<size_t>(i) * n;
    T* dxi = dx + static_cast<size_t>(i) * n;
    const T mu = mean[i], r = rstd[i];
    T c1 = 0, c2 = 0;
    for (int j = 0; j < n; ++j) {
      const T xhat = (xi[j] - mu) * r;
      const T dyg = dyi[j] * g[j];
      c1 += dyg;
      c2 += dyg * xhat;
      dg[j] += dyi[j] * xhat;
      db[j] += dyi[j];
    }
    c1 /= T(n);
    c2 /= T(n);
    for (int j = 0; j < n; ++j) {
      const T xhat = (xi[j] - mu) * r;
      dxi[j] += r * (dyi[j] * g[j] - c1 - xhat * c2);
    }
  }
}

template <typename T>
void geluForward(const T* u, T* y, size_t n) {
  const T k0 = T(0.7978845608028654), k1 = T(0.044715);
  for (size_t i = 0; i < n; ++i) {
    const T x = u[i];
    y[i] = T(0.5) * x * (T(1) + std::tanh(k0 * (x + k1 * x * x * x)));
  }
}

template <typename T>
void geluBackward(const T* u, const T* dy, T* du, size_t n) {
  const T k0 = T(0.7978845608028654), k1 = T(0.044715);
  for (size_t i = 0; i < n; ++i) {
    const T x = u[i];
    const T th = std::tanh(k0 * (x + k1 * x * x * x));
    const T d =
        T(0.5) * (T(1) + th) + T(0.5) * x * (T(1) - th * th) * k0 * (T(1) + T(3) * k1 * x * x);
    du[i] = d * dy[i];
  }
}

template <typename T>
void attentionForward(const T* qkv, T* out, T* probs, int batch, int seq, int heads, int headDim,
                      Precision prec) {
  const int w = heads * headDim;
  const size_t ld = static_cast<size_t>(3) * w;
  const T scale = T(1) / std::sqrt(T(headDim));
  for (int b = 0; b < batch; ++b) {
    const T* base = qkv + static_cast<size_t>(b) * seq * ld;
    for (int h = 0; h < heads; ++h) {
      T* p = probs + (static_cast<size_t>(b) * heads + h) * seq * seq;
      for (int i = 0; i < seq; ++i) {
        const T* q = base + i * ld + h * headDim;
        T* pi = p + static_cast<size_t>(i) * seq;
        T mx = -INFINITY;
        for (int j = 0; j <= i; ++j) {
          const T* kj = base + j * ld + w + h * headDim;
          T s = 0;
          for (int c = 0; c < headDim; ++c)
            s += q[c] * kj[c];
          pi[j] = s * scale;
          if (pi[j] > mx) mx = pi[j];
        }
        T sum = 0;
        for (int j = 0; j <= i; ++j) {
          pi[j] = std::exp(pi[j] - mx);
          sum += pi[j];
        }
        const T inv = T(1) / sum;
        for (int j = 0; j <= i; ++j)
          pi[j] *= inv;
        for (int j = i + 1; j < seq; ++j)
          pi[j] = 0;
        roundInPlace(prec, pi, static_cast<size_t>(i) + 1);
        T* o = out + (static_cast<size_t>(b) * seq + i) * w + h * headDim;
        for (int c = 0; c < headDim; ++c)
          o[c] = 0;
        for (int j = 0; j <= i; ++j)
          axpy1(o, base + j * ld + 2 * w + h * headDim, pi[j], headDim);
      }
    }
  }
}

template <typename T>
void attentionBackward(const T* qkv, const T* probs, const T* dout, T* dqkv, int batch, int seq,
                       int heads, int headDim, Precision prec) {
  const int w = heads * headDim;
  const size_t ld = static_cast<size_t>(3) * w;
  const T scale = T(1) / std::sqrt(T(headDim));
  std::memset(dqkv, 0, sizeof(T) * static_cast<size_t>(batch) * seq * ld);
  T* ds = scratch<T>(static_cast<size_t>(seq));
  for (int b = 0; b < batch; ++b) {
    const T* base = qkv + static_cast<size_t>(b) * seq * ld;
    T* dbase = dqkv + static_cast<size_t>(b) * seq * ld;
    for (int h = 0; h < heads; ++h) {
      const T* p = probs + (static_cast<size_t>(b) * heads + h) * seq * seq;
      for (int i = 0; i < seq; ++i) {
        const T* pi = p + static_cast<size_t>(i) * seq;
        const T* doi = dout + (static_cast<size_t>(b) * seq + i) * w + h * headDim;
        T dot = 0;
        for (int j = 0; j <= i; ++j) {
          const T* vj = base + j * ld + 2 * w + h * headDim;
          T dp = 0;
          for (int c = 0; c < headDim; ++c)
            dp += doi[c] * vj[c];
          ds[j] = dp;
          dot += pi[j] * dp;
          axpy1(dbase + j * ld + 2 * w + h * headDim, doi, pi[j], headDim);
        }
        for (int j = 0; j <= i; ++j)
          ds[j] = pi[j] * (ds[j] - dot) * scale;
        roundInPlace(prec, ds, static_cast<size_t>(i) + 1);
        const T* q = base + i * ld + h * headDim;
        T* dq = dbase + i * ld + h * headDim;
        for (int j = 0; j <= i; ++j) {
          axpy1(dq, base + j * ld + w + h * headDim, ds[j], headDim);
          axpy1(dbase + j * ld + w + h * headDim, q, ds[j], headDim);
        }
      }
    }
  }
}

#define LOOM_TRAINER_KERNELS(T)                                                                    \
  template void matmul<T>(const T*, const T*, const T*, T*, int, int, int, bool);                  \
  template void matmulGradInput<T>(const T*, const T*, T*, int, int, int, bool);                   \
  template void matmulGradWeight<T>(const T*, const T*, T*, int, int, int);                        \
  template void biasGrad<T>(const T*, T*, int, int);                                               \
  template void layerNormForward<T>(const T*, const T*, const T*, T*, T*, T*, int, int);           \
  template void layerNormBackward<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, T*, \
                                     int, int);                                                    \
  template void geluForward<T>(const T*, T*, size_t);                                              \
  template void geluBackward<T>(const T*, const T*, T*, size_t);                                   \
  template void attentionForward<T>(const T*, T*, T*, int, int, int, int, Precision);              \
  template void attentionBackward<T>(const T*, const T*, const T*, T*, int, int, int, int,         \
                                     Precision);
LOOM_TRAINER_KERNELS(float)
LOOM_TRAINER_KERNELS(double)
#undef LOOM_TRAINER_KERNELS

}  // namespace loom::trainer
