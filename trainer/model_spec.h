// model_spec.h - TinyGPT's parameter tensors in canonical order, how each is sharded (tensor
// parallel over TP, experts over EP), which pipeline stage holds it, and a rank's local layout
// of the tensors it holds in two flat buffers: dense (reduced over DP) and expert (reduced over
// the expert-DP group).
#ifndef LOOM_TRAINER_MODEL_SPEC_H_
#define LOOM_TRAINER_MODEL_SPEC_H_

#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "config.h"

namespace loom::trainer {

// What a tensor is within its unit; the layers address their weights by slot.
enum Slot {
  kWte,
  kWpe,  // embedding unit
  kLn1G,
  kLn1B,
  kWqkv,
  kBqkv,
  kWo,
  kBo,  // attention half of a layer
  kLn2G,
  kLn2B,
  kW1,
  kB1,
  kW2,
  kB2,  // dense FFN
  kRouter,
  kEw1,
  kEb1,
  kEw2,
  kEb2,  // MoE FFN ([E, ...] expert tensors)
  kLnfG,
  kLnfB,
  kHead,  // final unit
  kNumSlots
};

enum class Split { kNone, kRows, kCols };
enum class ShardAxis { kNone, kTp, kEp };
enum class InitKind { kNormal, kOnes, kZeros };

// A full tensor [rows, cols] (vectors are [1, n]). A split tensor is cut along `split` into
// `blocks` equal blocks, each block into `parts` equal parts; part i of every block, in block
// order, is shard i (so the Q, K and V blocks of wqkv each contribute their heads).
struct TensorSpec {
  std::string name;
  int rows = 0, cols = 0;
  Split split = Split::kNone;
  int blocks = 1;
  ShardAxis axis = ShardAxis::kNone;
  InitKind init = InitKind::kNormal;
  Slot slot = kWte;
  int unit = 0;  // 0 embedding, 1 + layer, kLayers + 1 final
  size_t numel() const { return static_cast<size_t>(rows) * cols; }
};

inline constexpr int kNumUnits = Dims::kLayers + 2;
// Pipeline stage holding a unit.
int stageOfUnit(int unit, int pp);

// The canonical tensor list of the dense or MoE model.
std::vector<TensorSpec> modelTensors(bool moe);
// Total parameters of the list (55,488 for the dense model).
size_t totalParams(const std::vector<TensorSpec>& specs);

// Elements of shard `part` of `parts` (the full size when the tensor is not split).
size_t shardNumel(const TensorSpec& t, int parts);
// Copies shard `part` out of the full tensor / into it.
template <typename T>
void extractShard(const TensorSpec& t, int parts, int part, const T* full, T* shard);
template <typename T>
void insertShard(const TensorSpec& t, int parts, int part, const T* shard, T* full);

// Where a rank holds what. Built from the rank's coordinates; pure data.
struct LocalTensor {
  int spec = -1;        // index into the canonical list
  bool expert = false;  // lives in the expert flat buffer
  size_t offset = 0;    // within its flat buffer
  size_t numel = 0;
  int parts = 1, part = 0;  // which shard of the full tensor
};

struct UnitRange {
  int unit = 0;
  size_t begin = 0, end = 0;              // dense flat range
  size_t expertBegin = 0, expertEnd = 0;  // expert flat range
};

struct LocalLayout {
  std::vector<TensorSpec> specs;
  std::vector<LocalTensor> tensors;  // the tensors this rank holds, canonical order
  std::vector<UnitRange> units;      // this stage's units, in forward order
  size_t denseSize = 0, expertSize = 0;
  std::array<std::array<int, kNumSlots>, kNumUnits> slotIndex{};  // -> tensors[], or -1
  // Count this element in the global gradient norm (TP-replicated tensors count on tp 0 only).
  std::vector<unsigned char> denseNormMask;

  const LocalTensor* find(int unit, Slot s) const {
    const int i = slotIndex[unit][s];
    return i < 0 ? nullptr : &tensors[i];
  }
  // Index of the unit in `units`, or -1 when this stage does not hold it.
  int unitIndex(int unit) const;
};

// The layout of the rank with tensor-parallel index tp, expert-parallel index ep (dp mod EP)
// and pipeline stage `stage`.
LocalLayout makeLocalLayout(const TrainConfig& cfg, int tp, int ep, int stage);

}  // namespace loom::trainer

#endif  // LOOM_TRAINER_MODEL_SPEC_H_
