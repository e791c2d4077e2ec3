// kernels.h - the dense math of one rank: matmuls, LayerNorm, GeLU, causal attention, each
// with its hand-written backward pass. Plain loops in a fixed order, so a result depends only
// on the inputs (never on threads or timing). All matrices are row-major and contiguous.
//
// Backward functions accumulate into parameter gradients (+=); input gradients are written or
// accumulated as each function says. Scratch space is thread-local (one rank = one thread).
#ifndef LOOM_TRAINER_KERNELS_H_
#define LOOM_TRAINER_KERNELS_H_

#include <cstddef>

#include "half.h"

namespace loom::trainer {

// y[m,n] = x[m,k] w[k,n] (+ bias[n] when bias != nullptr); with accumulate, y += x w instead.
template <typename T>
void matmul(const T* x, const T* w, const T* bias, T* y, int m, int k, int n, bool accumulate);
// dx[m,k] = dy[m,n] w[k,n]^T, or += with accumulate.
template <typename T>
void matmulGradInput(const T* dy, const T* w, T* dx, int m, int k, int n, bool accumulate);
// dw[k,n] += x[m,k]^T dy[m,n].
template <typename T>
void matmulGradWeight(const T* x, const T* dy, T* dw, int m, int k, int n);
// db[n] += sum over the m rows of dy.
template <typename T>
void biasGrad(const T* dy, T* db, int m, int n);

// y = (x - mean) * rstd * g + b per row of n; mean and rstd [m] are kept for backward.
template <typename T>
void layerNormForward(const T* x, const T* g, const T* b, T* y, T* mean, T* rstd, int m, int n);
// dx += LayerNorm'(dy); dg, db += the parameter gradients.
template <typename T>
void layerNormBackward(const T* dy, const T* x, const T* g, const T* mean, const T* rstd, T* dx,
                       T* dg, T* db, int m, int n);

// GeLU with the tanh approximation: y = 0.5 u (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3))).
template <typename T>
void geluForward(const T* u, T* y, size_t n);
// du = GeLU'(u) * dy (written, not accumulated).
template <typename T>
void geluBackward(const T* u, const T* dy, T* du, size_t n);

// Causal self-attention of `heads` heads of width `headDim` over `batch` sequences of `seq`
// tokens. qkv is [batch*seq, 3*W] with W = heads*headDim laid out [Q | K | V], head h at
// columns h*headDim of each part. out is [batch*seq, W]; probs [batch, heads, seq, seq] keeps
// the softmax for backward (rounded to `prec`, as the P.V matmul input).
template <typename T>
void attentionForward(const T* qkv, T* out, T* probs, int batch, int seq, int heads, int headDim,
                      Precision prec);
// dqkv (written) from dout; dout must already be rounded to the precision.
template <typename T>
void attentionBackward(const T* qkv, const T* probs, const T* dout, T* dqkv, int batch, int seq,
                       int heads, int headDim, Precision prec);

}  // namespace loom::trainer

#endif  // LOOM_TRAINER_KERNELS_H_
