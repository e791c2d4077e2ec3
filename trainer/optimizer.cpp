#include "optimizer.h"

#include <algorithm>
#include <cmath>

namespace loom::trainer {

template <typename T>
void adamUpdate(const AdamParams& a, int step, T clipCoef, T* p, const T* g, T* m, T* v, size_t n,
                Precision storeAs) {
  const T b1 = static_cast<T>(a.beta1), b2 = static_cast<T>(a.beta2);
  const T c1 = static_cast<T>(1.0 / (1.0 - std::pow(a.beta1, step)));
  const T c2 = static_cast<T>(1.0 / (1.0 - std::pow(a.beta2, step)));
  const T lr = static_cast<T>(a.lr), eps = static_cast<T>(a.eps),
          wd = static_cast<T>(a.weightDecay);
  for (size_t i = 0; i < n; ++i) {
    const T gi = g[i] * clipCoef;
    m[i] = b1 * m[i] + (T(1) - b1) * gi;
    v[i] = b2 * v[i] + (T(1) - b2) * gi * gi;
    const T mh = m[i] * c1, vh = v[i] * c2;
    p[i] -= lr * (mh / (std::sqrt(vh) + eps) + wd * p[i]);
  }
  roundInPlace(storeAs, p, n);
}

double clipCoefficient(double norm, double maxNorm) {
  return std::min(1.0, maxNorm / (norm + 1e-6));
}

void LossScaler::update(bool overflow) {
  if (!enabled_) return;
  if (overflow) {
    scale_ /= 2;
    clean_ = 0;
    return;
  }
  if (++clean_ >= window_) {
    scale_ *= 2;
    clean_ = 0;
  }
}

template void adamUpdate<float>(const AdamParams&, int, float, float*, const float*, float*, float*,
                                size_t, Precision);
template void adamUpdate<double>(const AdamParams&, int, double, double*, const double*, double*,
                                 double*, size_t, Precision);

}  // namespace loom::trainer
