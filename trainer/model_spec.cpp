#include "model_spec.h"

#include <cstring>

namespace loom::trainer {

namespace {

constexpr int kV = Dims::kVocab, kS = Dims::kSeq, kD = Dims::kWidth, kF = Dims::kFfn;
constexpr int kE = Dims::kExperts, kFe = Dims::kExpertFfn;

TensorSpec spec(std::string name, int rows, int cols, Slot slot, int unit,
                InitKind init = InitKind::kNormal) {
  TensorSpec t;
  t.name = std::move(name);
  t.rows = rows;
  t.cols = cols;
  t.slot = slot;
  t.unit = unit;
  t.init = init;
  return t;
}

TensorSpec sharded(TensorSpec t, Split split, ShardAxis axis, int blocks = 1) {
  t.split = split;
  t.axis = axis;
  t.blocks = blocks;
  return t;
}

void addLayer(std::vector<TensorSpec>* out, int l, bool moe) {
  const std::string p = "layer" + std::to_string(l) + ".";
  const int u = 1 + l;
  out->push_back(spec(p + "ln1.g", 1, kD, kLn1G, u, InitKind::kOnes));
  out->push_back(spec(p + "ln1.b", 1, kD, kLn1B, u, InitKind::kZeros));
  out->push_back(
      sharded(spec(p + "attn.wqkv", kD, 3 * kD, kWqkv, u), Split::kCols, ShardAxis::kTp, 3));
  out->push_back(sharded(spec(p + "attn.bqkv", 1, 3 * kD, kBqkv, u, InitKind::kZeros), Split::kCols,
                         ShardAxis::kTp, 3));
  out->push_back(sharded(spec(p + "attn.wo", kD, kD, kWo, u), Split::kRows, ShardAxis::kTp));
  out->push_back(spec(p + "attn.bo", 1, kD, kBo, u, InitKind::kZeros));
  out->push_back(spec(p + "ln2.g", 1, kD, kLn2G, u, InitKind::kOnes));
  out->push_back(spec(p + "ln2.b", 1, kD, kLn2B, u, InitKind::kZeros));
  if (Dims::isMoeLayer(moe, l)) {
    out->push_back(spec(p + "moe.router", kD, kE, kRouter, u));
    out->push_back(
        sharded(spec(p + "moe.w1", kE * kD, kFe, kEw1, u), Split::kRows, ShardAxis::kEp));
    out->push_back(sharded(spec(p + "moe.b1", kE, kFe, kEb1, u, InitKind::kZeros), Split::kRows,
                           ShardAxis::kEp));
    out->push_back(
        sharded(spec(p + "moe.w2", kE * kFe, kD, kEw2, u), Split::kRows, ShardAxis::kEp));
    out->push_back(sharded(spec(p + "moe.b2", kE, kD, kEb2, u, InitKind::kZeros), Split::kRows,
                           ShardAxis::kEp));
    return;
  }
  out->push_back(sharded(spec(p + "mlp.w1", kD, kF, kW1, u), Split::kCols, ShardAxis::kTp));
  out->push_back(
      sharded(spec(p + "mlp.b1", 1, kF, kB1, u, InitKind::kZeros), Split::kCols, ShardAxis::kTp));
  out->push_back(sharded(spec(p + "mlp.w2", kF, kD, kW2, u), Split::kRows, ShardAxis::kTp));
  out->push_back(spec(p + "mlp.b2", 1, kD, kB2, u, InitKind::kZeros));
}

}  // namespace

int stageOfUnit(int unit, int pp) {
  if (unit == 0) return 0;
  if (unit == kNumUnits - 1) return pp - 1;
  return (unit - 1) / (Dims::kLayers / pp);
}

std::vector<TensorSpec> modelTensors(bool moe) {
  std::vector<TensorSpec> out;
  out.push_back(sharded(spec("wte", kV, kD, kWte, 0), Split::kRows, ShardAxis::kTp));
  out.push_back(spec("wpe", kS, kD, kWpe, 0));
  for (int l = 0; l < Dims::kLayers; ++l)
    addLayer(&out, l, moe);
  const int f = kNumUnits - 1;
  out.push_back(spec("lnf.g", 1, kD, kLnfG, f, InitKind::kOnes));
  out.push_back(spec("lnf.b", 1, kD, kLnfB, f, InitKind::kZeros));
  out.push_back(sharded(spec("head", kD, kV, kHead, f), Split::kCols, ShardAxis::kTp));
  return out;
}

size_t totalParams(const std::vector<TensorSpec>& specs) {
  size_t n = 0;
  for (const TensorSpec& t : specs)
    n += t.numel();
  return n;
}

size_t shardNumel(const TensorSpec& t, int parts) {
  return t.split == Split::kNone ? t.numel() : t.numel() / static_cast<size_t>(parts);
}

namespace {

// Calls copy(fullOffset, shardOffset, count) for each contiguous run of shard `part`.
template <typename F>
void forEachRun(const TensorSpec& t, int parts, int part, F copy) {
  if (t.split == Split::kNone) {
    copy(size_t{0}, size_t{0}, t.numel());
    return;
  }
  if (t.split == Split::kRows) {
    const size_t blockRows = static_cast<size_t>(t.rows / t.blocks);
    const size_t partRows = blockRows / static_cast<size_t>(parts);
    size_t s = 0;
    for (int b = 0; b < t.blocks; ++b) {
      const size_t row = b * blockRows + static_cast<size_t>(part) * partRows;
      copy(row * t.cols, s, partRows * t.cols);
      s += partRows * t.cols;
    }
    return;
  }
  const size_t blockCols = static_cast<size_t>(t.cols / t.blocks);
  const size_t partCols = blockCols / static_cast<size_t>(parts);
  size_t s = 0;
  for (int r = 0; r < t.rows; ++r) {
    for (int b = 0; b < t.blocks; ++b) {
      copy(static_cast<size_t>(r) * t.cols + b * blockCols + part * partCols, s, partCols);
      s += partCols;
    }
  }
}

}  // namespace

template <typename T>
void extractShard(const TensorSpec& t, int parts, int part, const T* full, T* shard) {
  forEachRun(t, parts, part, [&](size_t f, size_t s, size_t n) {
    std::memcpy(shard + s, full + f, n * sizeof(T));
  });
}

template <typename T>
void insertShard(const TensorSpec& t, int parts, int part, const T* shard, T* full) {
  forEachRun(t, parts, part, [&](size_t f, size_t s, size_t n) {
    std::memcpy(full + f, shard + s, n * sizeof(T));
  });
}

template void extractShard<float>(const TensorSpec&, int, int, const float*, float*);
template void extractShard<double>(const TensorSpec&, int, int, const double*, double*);
template void insertShard<float>(const TensorSpec&, int, int, const float*, float*);
template void insertShard<double>(const TensorSpec&, int, int, const double*, double*);

int LocalLayout::unitIndex(int unit) const {
  for (size_t i = 0; i < units.size(); ++i)
    if (units[i].unit == unit) return static_cast<int>(i);
  return -1;
}

LocalLayout makeLocalLayout(const TrainConfig& cfg, int tp, int ep, int stage) {
  LocalLayout L;
  L.specs = modelTensors(cfg.moe);
  for (auto& row : L.slotIndex)
    row.fill(-1);
  for (size_t i = 0; i < L.specs.size(); ++i) {
    const TensorSpec& t = L.specs[i];
    if (stageOfUnit(t.unit, cfg.pp) != stage) continue;
    if (L.units.empty() || L.units.back().unit != t.unit) {
      UnitRange u;
      u.unit = t.unit;
      u.begin = u.end = L.denseSize;
      u.expertBegin = u.expertEnd = L.expertSize;
      L.units.push_back(u);
    }
    LocalTensor lt;
    lt.spec = static_cast<int>(i);
    lt.expert = t.axis == ShardAxis::kEp;
    lt.parts = t.axis == ShardAxis::kTp ? cfg.tp : t.axis == ShardAxis::kEp ? cfg.ep : 1;
    lt.part = t.axis == ShardAxis::kTp ? tp : t.axis == ShardAxis::kEp ? ep : 0;
    lt.numel = shardNumel(t, lt.parts);
    size_t& size = lt.expert ? L.expertSize : L.denseSize;
    lt.offset = size;
    size += lt.numel;
    if (lt.expert)
      L.units.back().expertEnd = size;
    else
      L.units.back().end = size;
    if (!lt.expert) {
      const unsigned char counted = t.axis == ShardAxis::kTp || tp == 0 ? 1 : 0;
      L.denseNormMask.insert(L.denseNormMask.end(), lt.numel, counted);
    }
    L.slotIndex[t.unit][t.slot] = static_cast<int>(L.tensors.size());
    L.tensors.push_back(lt);
  }
  return L;
}

}  // namespace loom::trainer
