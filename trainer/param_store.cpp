#include "param_store.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace loom::trainer {

namespace {

constexpr size_t kBucketBytes = 16384;

}  // namespace

template <typename T>
ParamStore<T>::ParamStore(const LocalLayout* layout, const TrainConfig& cfg,
                          const StoreGroups& groups, MemoryAccount* memory)
    : layout_(layout), cfg_(cfg), groups_(groups), memory_(memory), zero_(cfg.zero) {
  adam_ = AdamParams{cfg.lr, cfg.beta1, cfg.beta2, cfg.eps, cfg.weightDecay};
  const size_t n = static_cast<size_t>(groups_.dp.size), r = static_cast<size_t>(groups_.dp.rank);
  size_t offset = 0;
  for (const UnitRange& u : layout_->units) {
    const size_t len = u.end - u.begin;
    const size_t k = std::max<size_t>(1, (len * sizeof(T) + kBucketBytes - 1) / kBucketBytes);
    const size_t first = buckets_.size();
    for (size_t j = 0; j < k; ++j) {
      Bucket b;
      b.begin = u.begin + j * len / k;
      b.size = u.begin + (j + 1) * len / k - b.begin;
      b.chunk = (b.size + n - 1) / n;
      b.offset = offset;
      b.ownedBegin = std::min(b.size, r * b.chunk);
      b.ownedCount = std::min(b.size, b.ownedBegin + b.chunk) - b.ownedBegin;
      offset += b.chunk;
      buckets_.push_back(b);
    }
    unitBuckets_.emplace_back(first, buckets_.size());
  }
  for (const LocalTensor& t : layout_->tensors)
    if (!t.expert)
      replicated_.insert(replicated_.end(), t.numel,
                         layout_->specs[t.spec].axis == ShardAxis::kNone ? 1 : 0);
  const size_t dense = layout_->denseSize, sharded = offset, expert = layout_->expertSize;
  params_.bind(memory_, MemTag::kParam);
  grads_.bind(memory_, MemTag::kGrad);
  m_.bind(memory_, MemTag::kOptimizer);
  v_.bind(memory_, MemTag::kOptimizer);
  fullGrads_.bind(memory_, MemTag::kGrad);
  eParams_.bind(memory_, MemTag::kParam);
  eGrads_.bind(memory_, MemTag::kGrad);
  eM_.bind(memory_, MemTag::kOptimizer);
  eV_.bind(memory_, MemTag::kOptimizer);
  computeDense_.bind(memory_, MemTag::kParam);
  computeExpert_.bind(memory_, MemTag::kParam);
  params_.assign(zero_ == 3 ? sharded : dense);
  grads_.assign(zero_ >= 2 ? sharded : dense);
  m_.assign(zero_ >= 1 ? sharded : dense);
  v_.assign(zero_ >= 1 ? sharded : dense);
  eParams_.assign(expert);
  eGrads_.assign(expert);
  eM_.assign(expert);
  eV_.assign(expert);
  unitW_.resize(layout_->units.size());
  unitG_.resize(layout_->units.size());
  for (auto& b : unitW_)
    b.bind(memory_, MemTag::kParam);
  for (auto& b : unitG_)
    b.bind(memory_, MemTag::kGrad);
}

template <typename T>
void ParamStore<T>::load(const T* dense, const T* expert) {
  if (layout_->expertSize) std::memcpy(eParams_.data(), expert, layout_->expertSize * sizeof(T));
  if (zero_ != 3) {
    std::memcpy(params_.data(), dense, layout_->denseSize * sizeof(T));
    return;
  }
  for (const Bucket& b : buckets_)
    std::memcpy(params_.data() + b.offset, dense + b.begin + b.ownedBegin,
                b.ownedCount * sizeof(T));
}

template <typename T>
void ParamStore<T>::beginStep() {
  if (zero_ == 2) fullGrads_.assign(layout_->denseSize);
  if (cfg_.prec == Precision::kFp32) return;
  if (zero_ != 3) {
    computeDense_.assign(layout_->denseSize);
    roundCopy(cfg_.prec, params_.data(), computeDense_.data(), params_.size());
  }
  computeExpert_.assign(layout_->expertSize);
  roundCopy(cfg_.prec, eParams_.data(), computeExpert_.data(), eParams_.size());
}

template <typename T>
void ParamStore<T>::resolve(int ui, const T* dense, const T* expert, UnitWeights<T>* w) const {
  const UnitRange& u = layout_->units[ui];
  for (int s = 0; s < kNumSlots; ++s) {
    const LocalTensor* t = layout_->find(u.unit, static_cast<Slot>(s));
    if (!t) {
      w->at[s] = nullptr;
      continue;
    }
    w->at[s] = t->expert ? expert + t->offset : dense + (t->offset - u.begin);
  }
}

template <typename T>
Status ParamStore<T>::acquireWeights(int ui, UnitWeights<T>* w) {
  const bool half = cfg_.prec != Precision::kFp32;
  const T* expert = half ? computeExpert_.data() : eParams_.data();
  const UnitRange& u = layout_->units[ui];
  if (zero_ != 3) {
    const T* dense = (half ? computeDense_.data() : params_.data()) + u.begin;
    resolve(ui, dense, expert, w);
    return Status();
  }
  unitW_[ui].assign(u.end - u.begin);
  Status st = allGatherUnit(ui, unitW_[ui].data());
  roundInPlace(cfg_.prec, unitW_[ui].data(), unitW_[ui].size());
  resolve(ui, unitW_[ui].data(), expert, w);
  return st;
}

template <typename T>
void ParamStore<T>::releaseWeights(int ui) {
  unitW_[ui].release();
}

template <typename T>
Status ParamStore<T>::acquireGrads(int ui, UnitGrads<T>* g) {
  const UnitRange& u = layout_->units[ui];
  T* dense = nullptr;
  if (zero_ == 3) {
    unitG_[ui].assign(u.end - u.begin);
    dense = unitG_[ui].data();
  } else {
    dense = (zero_ == 2 ? fullGrads_.data() : grads_.data()) + u.begin;
  }
  UnitWeights<T> view;
  resolve(ui, dense, eGrads_.data(), &view);
  for (int s = 0; s < kNumSlots; ++s)
    g->at[s] = const_cast<T*>(view.at[s]);
  return Status();
}

template <typename T>
Status ParamStore<T>::releaseGrads(int ui) {
  if (zero_ != 3) return Status();
  const UnitRange& u = layout_->units[ui];
  Status st;
  for (size_t bi = unitBuckets_[ui].second; bi-- > unitBuckets_[ui].first && st.ok();) {
    const Bucket& b = buckets_[bi];
    std::vector<T> mine(b.chunk);
    st = reduceScatterBucket(b, unitG_[ui].data() + (b.begin - u.begin), mine.data());
    T* g = grads_.data() + b.offset;
    for (size_t i = 0; i < b.chunk; ++i)
      g[i] += mine[i];
  }
  unitG_[ui].release();
  return st;
}

template <typename T>
Status ParamStore<T>::bucketAllReduce(const Group& g, T* data, size_t n) {
  const size_t bucket = kBucketBytes / sizeof(T);
  for (size_t end = n; end > 0;) {
    const size_t begin = end > bucket ? end - bucket : 0;
    Status s = groupAllReduce(g, data + begin, end - begin);
    if (!s.ok()) return s;
    end = begin;
  }
  return Status();
}

template <typename T>
Status ParamStore<T>::reduceScatterBucket(const Bucket& b, const T* full, T* out) {
  std::vector<T> staging(b.chunk * static_cast<size_t>(groups_.dp.size), T(0));
  std::memcpy(staging.data(), full, b.size * sizeof(T));
  return groupReduceScatter(groups_.dp, staging.data(), out, b.chunk);
}

template <typename T>
Status ParamStore<T>::allGatherBucket(const Bucket& b, const T* shard, T* full) {
  const size_t r = static_cast<size_t>(groups_.dp.rank);
  std::vector<T> staging(b.chunk * static_cast<size_t>(groups_.dp.size), T(0));
  std::memcpy(staging.data() + r * b.chunk, shard, b.ownedCount * sizeof(T));
  Status s = groupAllGather(groups_.dp, staging.data() + r * b.chunk, staging.data(), b.chunk);
  std::memcpy(full, staging.data(), b.size * sizeof(T));
  return s;
}

template <typename T>
Status ParamStore<T>::allGatherUnit(int ui, T* out) {
  // A unit's shards of all its buckets are contiguous in params_, so one AllGather brings the
  // whole unit (an AllGather only copies: the result equals the per-bucket gathers exactly).
  const auto [first, last] = unitBuckets_[ui];
  const size_t n = static_cast<size_t>(groups_.dp.size), r = static_cast<size_t>(groups_.dp.rank);
  const size_t per = buckets_[last - 1].offset + buckets_[last - 1].chunk - buckets_[first].offset;
  std::vector<T> staging(per * n);
  std::memcpy(staging.data() + r * per, params_.data() + buckets_[first].offset, per * sizeof(T));
  Status s = groupAllGather(groups_.dp, staging.data() + r * per, staging.data(), per);
  const size_t unitBegin = layout_->units[ui].begin;
  for (size_t bi = first; bi < last; ++bi) {
    const Bucket& b = buckets_[bi];
    for (size_t q = 0; q < n; ++q) {
      const size_t from = std::min(b.size, q * b.chunk), to = std::min(b.size, (q + 1) * b.chunk);
      std::memcpy(out + (b.begin - unitBegin) + from,
                  staging.data() + q * per + (b.offset - buckets_[first].offset),
                  (to - from) * sizeof(T));
    }
  }
  return s;
}

template <typename T>
template <typename F>
void ParamStore<T>::forEachOwned(F f) {
  const unsigned char* mask = layout_->denseNormMask.data();
  if (zero_ == 0) {
    f(OwnedView{params_.data(), grads_.data(), m_.data(), v_.data(), mask, replicated_.data(),
                params_.size(), groups_.dp.rank == 0});
  } else {
    for (const Bucket& b : buckets_) {
      const size_t at = b.begin + b.ownedBegin;
      T* p = zero_ == 3 ? params_.data() + b.offset : params_.data() + at;
      T* g = zero_ >= 2 ? grads_.data() + b.offset : grads_.data() + at;
      f(OwnedView{p, g, m_.data() + b.offset, v_.data() + b.offset, mask + at,
                  replicated_.data() + at, b.ownedCount, true});
    }
  }
}

template <typename T>
Status ParamStore<T>::sumReplicatedOverTp() {
  std::vector<T> packed;
  forEachOwned([&](const OwnedView& o) {
    for (size_t i = 0; i < o.n; ++i)
      if (o.replicated[i]) packed.push_back(o.g[i]);
  });
  Status s = groupAllReduce(groups_.tp, packed.data(), packed.size());
  size_t k = 0;
  forEachOwned([&](const OwnedView& o) {
    for (size_t i = 0; i < o.n; ++i)
      if (o.replicated[i]) o.g[i] = packed[k++];
  });
  return s;
}

template <typename T>
Status ParamStore<T>::reduceGrads(double lossScale) {
  Status s;
  if (zero_ <= 2) {
    const T* full = zero_ == 2 ? fullGrads_.data() : grads_.data();
    for (size_t bi = buckets_.size(); bi-- > 0 && s.ok();) {
      const Bucket& b = buckets_[bi];
      std::vector<T> mine(b.chunk);
      s = reduceScatterBucket(b, full + b.begin, mine.data());
      if (!s.ok()) break;
      if (zero_ == 0)
        s = allGatherBucket(b, mine.data(), grads_.data() + b.begin);
      else if (zero_ == 1)
        std::memcpy(grads_.data() + b.begin + b.ownedBegin, mine.data(), b.ownedCount * sizeof(T));
      else
        std::memcpy(grads_.data() + b.offset, mine.data(), b.chunk * sizeof(T));
    }
    if (zero_ == 2) fullGrads_.release();
  }
  if (!s.ok()) return s;
  s = bucketAllReduce(groups_.edp, eGrads_.data(), eGrads_.size());
  if (!s.ok()) return s;
  if (cfg_.sp) s = sumReplicatedOverTp();
  if (!s.ok() || lossScale == 1.0) return s;
  const T inv = static_cast<T>(1.0 / lossScale);
  forEachOwned([&](const OwnedView& o) {
    for (size_t i = 0; i < o.n; ++i)
      o.g[i] *= inv;
  });
  for (size_t i = 0; i < eGrads_.size(); ++i)
    eGrads_[i] *= inv;
  return s;
}

template <typename T>
Status ParamStore<T>::update(bool inject, UpdateStats* stats) {
  double flag = 0, sumsq = 0;
  bool first = true;
  forEachOwned([&](const OwnedView& o) {
    if (inject && first && o.n > 0) o.g[0] = std::numeric_limits<T>::infinity();
    first = first && o.n == 0;
    for (size_t i = 0; i < o.n; ++i) {
      if (!std::isfinite(o.g[i])) flag = 1;
      if (o.countNorm && o.mask[i]) sumsq += static_cast<double>(o.g[i]) * o.g[i];
    }
  });
  const bool countExperts = groups_.tpRank == 0 && groups_.edpRank == 0;
  for (size_t i = 0; i < eGrads_.size(); ++i) {
    if (!std::isfinite(eGrads_[i])) flag = 1;
    if (countExperts) sumsq += static_cast<double>(eGrads_[i]) * eGrads_[i];
  }
  Status s = groupAllReduce(groups_.world, &flag, 1, loomMax);
  if (!s.ok()) return s;
  stats->skipped = flag != 0;
  if (!stats->skipped) {
    s = groupAllReduce(groups_.world, &sumsq, 1);
    if (!s.ok()) return s;
    stats->gradNorm = std::sqrt(sumsq);
    const T coef = static_cast<T>(clipCoefficient(stats->gradNorm, cfg_.clip));
    const Precision storeAs = cfg_.masterWeights ? Precision::kFp32 : Precision::kBf16;
    ++step_;
    forEachOwned([&](const OwnedView& o) {
      adamUpdate(adam_, step_, coef, o.p, o.g, o.m, o.v, o.n, storeAs);
    });
    adamUpdate(adam_, step_, coef, eParams_.data(), eGrads_.data(), eM_.data(), eV_.data(),
               eParams_.size(), storeAs);
    if (zero_ == 1 || zero_ == 2) {
      for (size_t bi = 0; bi < buckets_.size() && s.ok(); ++bi) {
        const Bucket& b = buckets_[bi];
        s = allGatherBucket(b, params_.data() + b.begin + b.ownedBegin, params_.data() + b.begin);
      }
    }
  }
  discardGrads();
  return s;
}

template <typename T>
void ParamStore<T>::discardGrads() {
  std::fill(grads_.data(), grads_.data() + grads_.size(), T(0));
  std::fill(eGrads_.data(), eGrads_.data() + eGrads_.size(), T(0));
  fullGrads_.release();
  computeDense_.release();
  computeExpert_.release();
}

template <typename T>
Status ParamStore<T>::fullParams(std::vector<T>* dense, std::vector<T>* expert) {
  expert->assign(eParams_.data(), eParams_.data() + eParams_.size());
  if (zero_ != 3) {
    dense->assign(params_.data(), params_.data() + params_.size());
    return Status();
  }
  dense->assign(layout_->denseSize, T(0));
  for (const Bucket& b : buckets_) {
    Status s = allGatherBucket(b, params_.data() + b.offset, dense->data() + b.begin);
    if (!s.ok()) return s;
  }
  return Status();
}

template <typename T>
Status ParamStore<T>::fullGrads(std::vector<T>* dense, std::vector<T>* expert) {
  expert->assign(eGrads_.data(), eGrads_.data() + eGrads_.size());
  if (zero_ == 0) {
    dense->assign(grads_.data(), grads_.data() + grads_.size());
    return Status();
  }
  dense->assign(layout_->denseSize, T(0));
  for (const Bucket& b : buckets_) {
    const T* mine = zero_ == 1 ? grads_.data() + b.begin + b.ownedBegin : grads_.data() + b.offset;
    Status s = allGatherBucket(b, mine, dense->data() + b.begin);
    if (!s.ok()) return s;
  }
  return Status();
}

template class ParamStore<float>;
template class ParamStore<double>;

}  // namespace loom::trainer
