#include "stage.h"

#include <cstring>

#include "kernels.h"

namespace loom::trainer {

namespace {

constexpr int kD = Dims::kWidth, kS = Dims::kSeq, kV = Dims::kVocab;
constexpr double kGlobalTokens = static_cast<double>(Dims::kBatch) * (kS - 1);

bool isLayer(int unit) {
  return unit >= 1 && unit <= Dims::kLayers;
}

}  // namespace

template <typename T>
StageModel<T>::StageModel(const StageContext& ctx, const LocalLayout* layout, ParamStore<T>* store)
    : ctx_(ctx), layout_(layout), store_(store) {}

template <typename T>
size_t StageModel<T>::boundaryElems(const MicroBatch& mb) const {
  return static_cast<size_t>(ctx_.tp.localRows(mb.count * kS)) * kD;
}

template <typename T>
void StageModel<T>::setLossScale(double lossScale) {
  lossScale_ = lossScale;
}

template <typename T>
BlockContext StageModel<T>::blockContext(int unit, int batch) const {
  BlockContext b;
  b.tp = ctx_.tp;
  b.moe = ctx_.moe;
  b.isMoe = Dims::isMoeLayer(ctx_.moeModel, unit - 1);
  b.batch = batch;
  b.memory = ctx_.memory;
  return b;
}

template <typename T>
Status StageModel<T>::forward(const MicroBatch& mb, const T* in, T* out, double* loss) {
  auto st = std::make_unique<Micro>();
  microBatchTokens(mb, &st->tokens, &st->targets);
  const int m = mb.count * kS;
  const size_t nl = boundaryElems(mb);
  std::vector<T> x(nl), y(nl);
  if (!ctx_.first) std::memcpy(x.data(), in, nl * sizeof(T));
  st->blocks.resize(layout_->units.size());
  for (size_t ui = 0; ui < layout_->units.size(); ++ui) {
    const int unit = layout_->units[ui].unit;
    UnitWeights<T> w;
    Status s = store_->acquireWeights(static_cast<int>(ui), &w);
    if (s.ok() && unit == 0) {
      const int vl = kV / ctx_.tp.group.size;
      std::vector<T> partial(static_cast<size_t>(m) * kD);
      s = embeddingForward(ctx_.tp, st->tokens.data(), w.at[kWte], ctx_.tp.group.rank * vl, vl,
                           w.at[kWpe], partial.data(), x.data(), m, kD, kS);
    } else if (s.ok() && isLayer(unit)) {
      s = blockForward(blockContext(unit, mb.count), w, x.data(), y.data(), &st->blocks[ui], loss);
      x.swap(y);
    } else if (s.ok()) {
      s = forwardFinal(w, st.get(), x.data(), m, loss);
    }
    store_->releaseWeights(static_cast<int>(ui));
    if (!s.ok()) return s;
  }
  if (!ctx_.last) std::memcpy(out, x.data(), nl * sizeof(T));
  stash_[mb.index] = std::move(st);
  if (stashed() > peakStashed_) peakStashed_ = stashed();
  return Status();
}

template <typename T>
Status StageModel<T>::forwardFinal(const UnitWeights<T>& w, Micro* st, const T* x, int m,
                                   double* loss) {
  const int ml = ctx_.tp.localRows(m), vl = kV / ctx_.tp.group.size;
  auto track = [&](Tracked<T>* b, size_t n) {
    b->bind(ctx_.memory, MemTag::kActivation);
    b->assign(n);
  };
  track(&st->xf, static_cast<size_t>(ml) * kD);
  std::memcpy(st->xf.data(), x, st->xf.size() * sizeof(T));
  track(&st->meanf, static_cast<size_t>(ml));
  track(&st->rstdf, static_cast<size_t>(ml));
  track(&st->af, static_cast<size_t>(m) * kD);
  track(&st->dlogits, static_cast<size_t>(m) * vl);
  std::vector<T> local(static_cast<size_t>(ml) * kD), logits(static_cast<size_t>(m) * vl);
  layerNormForward(x, w.at[kLnfG], w.at[kLnfB], local.data(), st->meanf.data(), st->rstdf.data(),
                   ml, kD);
  roundInPlace(ctx_.tp.prec, local.data(), local.size());
  Status s = columnLinearForward(ctx_.tp, local.data(), st->af.data(), w.at[kHead],
                                 static_cast<const T*>(nullptr), logits.data(), m, kD, vl);
  if (!s.ok()) return s;
  double ceSum = 0;
  const T gradScale = static_cast<T>(lossScale_ / kGlobalTokens);
  s = crossEntropyForward(ctx_.tp, logits.data(), st->targets.data(), ctx_.tp.group.rank * vl, vl,
                          m, gradScale, st->dlogits.data(), &ceSum);
  *loss += ceSum / kGlobalTokens;
  return s;
}

template <typename T>
Status StageModel<T>::backwardFinal(const UnitWeights<T>& w, const UnitGrads<T>& g, Micro* st,
                                    T* dx, int m) {
  const int ml = ctx_.tp.localRows(m), vl = kV / ctx_.tp.group.size;
  std::vector<T> full(static_cast<size_t>(m) * kD), daf(static_cast<size_t>(ml) * kD);
  Status s =
      columnLinearBackward(ctx_.tp, st->af.data(), w.at[kHead], st->dlogits.data(), g.at[kHead],
                           static_cast<T*>(nullptr), full.data(), daf.data(), m, kD, vl);
  if (!s.ok()) return s;
  std::memset(dx, 0, daf.size() * sizeof(T));
  layerNormBackward(daf.data(), st->xf.data(), w.at[kLnfG], st->meanf.data(), st->rstdf.data(), dx,
                    g.at[kLnfG], g.at[kLnfB], ml, kD);
  return Status();
}

template <typename T>
Status StageModel<T>::backward(const MicroBatch& mb, const T* dout, T* din) {
  auto it = stash_.find(mb.index);
  if (it == stash_.end())
    return Status(loomInternalError, "loom-train: backward of micro-batch " +
                                         std::to_string(mb.index) + " before its forward");
  Micro* st = it->second.get();
  const int m = mb.count * kS;
  const size_t nl = boundaryElems(mb);
  std::vector<T> dx(nl), dy(nl);
  if (!ctx_.last) std::memcpy(dx.data(), dout, nl * sizeof(T));
  for (int ui = static_cast<int>(layout_->units.size()) - 1; ui >= 0; --ui) {
    const int unit = layout_->units[ui].unit;
    UnitWeights<T> w;
    UnitGrads<T> g;
    Status s = store_->acquireWeights(ui, &w);
    if (s.ok()) s = store_->acquireGrads(ui, &g);
    if (s.ok() && unit == 0) {
      const int vl = kV / ctx_.tp.group.size;
      std::vector<T> full(static_cast<size_t>(m) * kD);
      s = embeddingBackward(ctx_.tp, st->tokens.data(), dx.data(), full.data(), g.at[kWte],
                            ctx_.tp.group.rank * vl, vl, g.at[kWpe], m, kD, kS);
    } else if (s.ok() && isLayer(unit)) {
      s = blockBackward(blockContext(unit, mb.count), w, g, dx.data(), dy.data(),
                        static_cast<T>(lossScale_), &st->blocks[ui]);
      dx.swap(dy);
    } else if (s.ok()) {
      s = backwardFinal(w, g, st, dx.data(), m);
    }
    if (s.ok()) s = store_->releaseGrads(ui);
    store_->releaseWeights(ui);
    if (!s.ok()) return s;
  }
  if (!ctx_.first) std::memcpy(din, dx.data(), nl * sizeof(T));
  stash_.erase(it);
  return Status();
}

template class StageModel<float>;
template class StageModel<double>;

}  // namespace loom::trainer
