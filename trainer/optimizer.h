// optimizer.h - AdamW over flat arrays, the global-norm clip coefficient and fp16's dynamic
// loss scaling. Pure functions of their inputs; the caller decides which elements a rank owns.
#ifndef LOOM_TRAINER_OPTIMIZER_H_
#define LOOM_TRAINER_OPTIMIZER_H_

#include <cstddef>

#include "half.h"

namespace loom::trainer {

struct AdamParams {
  double lr = 3e-3, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weightDecay = 0.0;
};

// One AdamW step (step >= 1 counts applied updates) on n elements, with the gradient scaled by
// clipCoef. With `storeAs` bf16 (the no-master negative control) the parameter is rounded
// after the update, as if it were stored in bf16.
template <typename T>
void adamUpdate(const AdamParams& a, int step, T clipCoef, T* p, const T* g, T* m, T* v, size_t n,
                Precision storeAs = Precision::kFp32);

// min(1, maxNorm / (norm + 1e-6)), as torch.nn.utils.clip_grad_norm_.
double clipCoefficient(double norm, double maxNorm);

// Dynamic loss scaling: start at `initial`, halve on overflow (the step is skipped), double
// after `window` clean steps in a row. Disabled: the scale stays 1.
class LossScaler {
 public:
  LossScaler(bool enabled, double initial, int window)
      : enabled_(enabled), scale_(enabled ? initial : 1.0), window_(window) {}
  double scale() const { return scale_; }
  void update(bool overflow);

 private:
  bool enabled_;
  double scale_;
  int window_;
  int clean_ = 0;
};

}  // namespace loom::trainer

#endif  // LOOM_TRAINER_OPTIMIZER_H_
