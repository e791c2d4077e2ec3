#include "trainer.h"

#include <cstdio>
#include <cstring>

#include "rng.h"
#include "schedule.h"

namespace loom::trainer {

namespace {

std::string fmt(double v) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

int partOf(const TensorSpec& t, const Coords& c) {
  return t.axis == ShardAxis::kTp ? c.tp : t.axis == ShardAxis::kEp ? c.ep : 0;
}

int partsOf(const TensorSpec& t, const TrainConfig& cfg) {
  return t.axis == ShardAxis::kTp ? cfg.tp : t.axis == ShardAxis::kEp ? cfg.ep : 1;
}

}  // namespace

std::string jsonLine(const StepRecord& r) {
  return "{\"step\":" + std::to_string(r.step) + ",\"loss\":" + fmt(r.loss) +
         ",\"grad_norm\":" + fmt(r.gradNorm) + ",\"loss_scale\":" + fmt(r.lossScale) +
         ",\"skipped\":" + (r.skipped ? "true" : "false") + "}";
}

template <typename T>
std::vector<T> buildFullModel(const std::vector<TensorSpec>& specs, uint64_t seed) {
  std::vector<T> full(totalParams(specs));
  size_t off = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    for (size_t e = 0; e < specs[i].numel(); ++e) {
      double v = 0;
      if (specs[i].init == InitKind::kOnes) v = 1;
      if (specs[i].init == InitKind::kNormal) v = 0.02 * normalAt(seed, i, e);
      full[off + e] = static_cast<T>(v);
    }
    off += specs[i].numel();
  }
  return full;
}

template <typename T>
Trainer<T>::Trainer(const TrainConfig& cfg, Groups* groups)
    : cfg_(cfg), groups_(groups), me_(groups->coords) {
  world_ = Group::of(groups->world);
  tp_ = Group::of(groups->tp);
  dp_ = Group::of(groups->dp);
  pp_ = Group::of(groups->pp);
  ep_ = Group::of(groups->ep);
  edp_ = Group::of(groups->edp);
}

template <typename T>
Status Trainer<T>::init() {
  layout_ = makeLocalLayout(cfg_, me_.tp, me_.ep, me_.pp);
  StoreGroups sg{dp_, edp_, tp_, world_, me_.tp, me_.edp};
  store_ = std::make_unique<ParamStore<T>>(&layout_, cfg_, sg, &memory_);
  StageContext sc;
  sc.tp = TpContext{tp_, cfg_.sp, cfg_.prec};
  sc.moe.ep = ep_;
  sc.moe.prec = cfg_.prec;
  sc.moe.topk = cfg_.topk;
  sc.moe.capacityFactor = cfg_.capacityFactor;
  sc.moe.auxWeight = 0.01 * Dims::kExperts / (static_cast<double>(Dims::kBatch) * Dims::kSeq);
  sc.moe.memory = &memory_;
  sc.memory = &memory_;
  sc.moeModel = cfg_.moe;
  sc.first = me_.pp == 0;
  sc.last = me_.pp == cfg_.pp - 1;
  stage_ = std::make_unique<StageModel<T>>(sc, &layout_, store_.get());
  scaler_ = LossScaler(cfg_.prec == Precision::kFp16, cfg_.lossScale, cfg_.scaleWindow);
  std::vector<T> full;
  if (me_.rank == 0) full = buildFullModel<T>(layout_.specs, cfg_.seed);
  std::vector<T> dense, expert;
  Status s = distribute(full, &dense, &expert);
  if (!s.ok()) return s;
  store_->load(dense.data(), expert.data());
  memory_.markPersistent();
  return Status();
}

template <typename T>
Status Trainer<T>::distribute(const std::vector<T>& full, std::vector<T>* dense,
                              std::vector<T>* expert) {
  dense->assign(layout_.denseSize, T(0));
  expert->assign(layout_.expertSize, T(0));
  const loomDataType_t dt = loom::dataTypeOf<T>();
  size_t off = 0;
  for (const TensorSpec& t : layout_.specs) {
    const LocalTensor* lt = layout_.find(t.unit, t.slot);
    const int parts = partsOf(t, cfg_);
    const size_t n = shardNumel(t, parts);
    std::vector<T> piece(n);
    Status s;
    if (t.split == Split::kNone) {
      if (me_.rank == 0) std::memcpy(piece.data(), full.data() + off, n * sizeof(T));
      s = groups_->world.broadcast(piece.data(), piece.data(), n, dt, 0);
    } else {
      std::vector<T> send;
      if (me_.rank == 0) {
        send.resize(n * static_cast<size_t>(cfg_.world()));
        for (int r = 0; r < cfg_.world(); ++r)
          extractShard(t, parts, partOf(t, coordsOf(r, cfg_)), full.data() + off,
                       send.data() + n * static_cast<size_t>(r));
      }
      s = groups_->world.scatter(send.data(), piece.data(), n, dt, 0);
    }
    if (!s.ok()) return s;
    if (lt)
      std::memcpy((lt->expert ? expert->data() : dense->data()) + lt->offset, piece.data(),
                  n * sizeof(T));
    off += t.numel();
  }
  return Status();
}

template <typename T>
Status Trainer<T>::gatherCanonical(const std::vector<T>& dense, const std::vector<T>& expert,
                                   std::vector<double>* out, int* mismatches) {
  const loomDataType_t dt = loom::dataTypeOf<T>();
  const bool root = me_.rank == 0;
  if (root) out->assign(totalParams(layout_.specs), 0.0);
  std::vector<T> full;
  size_t off = 0;
  for (const TensorSpec& t : layout_.specs) {
    const LocalTensor* lt = layout_.find(t.unit, t.slot);
    const int parts = partsOf(t, cfg_);
    const size_t n = shardNumel(t, parts);
    std::vector<T> piece(n, T(0)), all(root ? n * static_cast<size_t>(cfg_.world()) : 0);
    if (lt)
      std::memcpy(piece.data(), (lt->expert ? expert.data() : dense.data()) + lt->offset,
                  n * sizeof(T));
    Status s = groups_->world.gather(piece.data(), all.data(), n, dt, 0);
    if (!s.ok()) return s;
    if (root) {
      full.assign(t.numel(), T(0));
      bool differs = false;
      for (int part = 0; part < parts; ++part) {
        int chosen = -1;
        for (int r = 0; r < cfg_.world(); ++r) {
          const Coords c = coordsOf(r, cfg_);
          if (stageOfUnit(t.unit, cfg_.pp) != c.pp || partOf(t, c) != part) continue;
          const T* p = all.data() + n * static_cast<size_t>(r);
          if (chosen < 0) {
            chosen = r;
            insertShard(t, parts, part, p, full.data());
          } else if (std::memcmp(p, all.data() + n * static_cast<size_t>(chosen), n * sizeof(T))) {
            differs = true;
          }
        }
      }
      if (differs && mismatches) ++*mismatches;
      for (size_t e = 0; e < t.numel(); ++e)
        (*out)[off + e] = static_cast<double>(full[e]);
    }
    off += t.numel();
  }
  return Status();
}

template <typename T>
Status Trainer<T>::gatherParams(std::vector<double>* out, int* mismatches) {
  std::vector<T> dense, expert;
  Status s = store_->fullParams(&dense, &expert);
  if (!s.ok()) return s;
  if (mismatches) *mismatches = 0;
  return gatherCanonical(dense, expert, out, mismatches);
}

template <typename T>
Status Trainer<T>::forwardBackward(int step, double* loss) {
  const double scale = scaler_.scale();
  stage_->setLossScale(scale);
  store_->beginStep();
  const std::vector<MicroBatch> mbs = microBatches(step, me_.dp, cfg_.dp, cfg_.mbs);
  const size_t perRound = mbs.size() / static_cast<size_t>(cfg_.accum);
  for (int r = 0; r < cfg_.accum; ++r) {
    std::vector<MicroBatch> round(mbs.begin() + r * perRound, mbs.begin() + (r + 1) * perRound);
    Status s = runSchedule(cfg_.schedule, pp_, stage_.get(), round, step, r, &trace_, loss);
    if (!s.ok()) return s;
  }
  return store_->reduceGrads(scale);
}

template <typename T>
Status Trainer<T>::evaluate(int step, double* loss, std::vector<double>* grads) {
  double local = 0;
  Status s = forwardBackward(step, &local);
  if (s.ok() && grads) {
    std::vector<T> dense, expert;
    s = store_->fullGrads(&dense, &expert);
    if (s.ok()) s = gatherCanonical(dense, expert, grads, nullptr);
  }
  store_->discardGrads();
  if (!s.ok()) return s;
  *loss = me_.tp == 0 ? local : 0.0;
  return groupAllReduce(world_, loss, 1);
}

template <typename T>
Status Trainer<T>::loadParams(const std::vector<double>& canonical) {
  std::vector<T> full;
  if (me_.rank == 0) full.assign(canonical.begin(), canonical.end());
  std::vector<T> dense, expert;
  Status s = distribute(full, &dense, &expert);
  if (s.ok()) store_->load(dense.data(), expert.data());
  return s;
}

template <typename T>
Status Trainer<T>::step(int step, StepRecord* rec, std::vector<double>* grads) {
  const double scale = scaler_.scale();
  double loss = 0;
  Status s = forwardBackward(step, &loss);
  if (!s.ok()) return s;
  if (grads) {
    std::vector<T> dense, expert;
    s = store_->fullGrads(&dense, &expert);
    if (s.ok()) s = gatherCanonical(dense, expert, grads, nullptr);
    if (!s.ok()) return s;
  }
  const bool inject = cfg_.injectStep == step + 1 && cfg_.injectRank == me_.rank;
  UpdateStats stats;
  s = store_->update(inject, &stats);
  if (!s.ok()) return s;
  scaler_.update(stats.skipped);
  double reported = me_.tp == 0 ? loss : 0.0;
  s = groupAllReduce(world_, &reported, 1);
  if (!s.ok()) return s;
  rec->step = step + 1;
  rec->loss = reported;
  rec->gradNorm = stats.gradNorm;
  rec->lossScale = scale;
  rec->skipped = stats.skipped;
  memory_.markPersistent();
  return Status();
}

template <typename T>
GroupCounters Trainer<T>::counters() const {
  GroupCounters c{};
  for (int g = 0; g < kNumGroups; ++g) {
    loom::Communicator& comm = groups_->get(static_cast<GroupKind>(g));
    if (comm.valid()) c[g] = comm.counters();
  }
  return c;
}

template std::vector<float> buildFullModel<float>(const std::vector<TensorSpec>&, uint64_t);
template std::vector<double> buildFullModel<double>(const std::vector<TensorSpec>&, uint64_t);
template class Trainer<float>;
template class Trainer<double>;

}  // namespace loom::trainer
