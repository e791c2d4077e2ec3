// config.h - the fixed model dimensions of TRAINER.md and the run configuration (the CLI).
#ifndef LOOM_TRAINER_CONFIG_H_
#define LOOM_TRAINER_CONFIG_H_

#include <cstdint>
#include <string>

#include "half.h"
#include "loom/loom.hpp"

namespace loom::trainer {

// TinyGPT and its data, fixed so that every layout starts from the same numbers.
struct Dims {
  static constexpr int kVocab = 64;
  static constexpr int kSeq = 16;
  static constexpr int kWidth = 32;
  static constexpr int kHeads = 4;
  static constexpr int kHeadDim = 8;
  static constexpr int kFfn = 128;
  static constexpr int kLayers = 4;
  static constexpr int kExperts = 4;
  static constexpr int kExpertFfn = 64;
  static constexpr int kBatch = 16;  // sequences per optimizer step (global)
  static constexpr int kParams = 55488;
  static bool isMoeLayer(bool moe, int layer) { return moe && (layer == 1 || layer == 3); }
};

enum class Schedule { kGpipe, kOneFOneB };

// Everything a run depends on. Defaults are TRAINER.md's; parseArgs fills it from the CLI and
// validate() rejects what the trainer does not implement, with the reason.
struct TrainConfig {
  int dp = 1, tp = 1, pp = 1, ep = 1;
  int zero = 0;  // 0 (plain DP), 1, 2, 3
  Schedule schedule = Schedule::kOneFOneB;
  int mbs = 2;    // sequences per micro-batch
  int accum = 1;  // pipeline rounds per step; DP traffic only after the last
  int steps = 20;
  bool fp64 = true;  // --dtype f64|f32
  Precision prec = Precision::kFp32;
  bool masterWeights = true;  // --no-master: pure bf16 (the negative control)
  bool moe = false;
  int topk = 1;
  bool sp = false;
  // Optimizer and loss scaling (fixed by the spec; settable for the unit tests).
  double lr = 3e-3, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weightDecay = 0.0, clip = 1.0;
  double lossScale = 65536.0;  // fp16 only
  int scaleWindow = 200;       // clean steps before the loss scale doubles
  double capacityFactor = 1.25;
  uint64_t seed = 1234;
  // Testing hooks: make `injectRank` see an overflow at step `injectStep` (1-based, 0 = never).
  int injectStep = 0, injectRank = -1;
  int nodeSize = 0;      // simulated ranks per node for the group table (0: all on one node)
  bool threads = false;  // ranks as threads in this process instead of launcher processes
  bool quiet = false;
  std::string jsonPath;  // JSON lines per step ("-" = stdout)
  std::string dumpParamsPath;
  std::string tracePath;  // schedule trace, one line per event (processes: PATH.<rank>)

  int world() const { return dp * tp * pp; }
};

// Parses argv[1..argc) into *cfg (starting from defaults). Unknown flags are errors.
Status parseArgs(int argc, const char* const* argv, TrainConfig* cfg);
// Checks divisibility and the supported combinations; the message says what is wrong.
Status validate(const TrainConfig& cfg);
std::string usage();
// One line describing the layout, e.g. "dp2 tp2 pp2 zero1 1f1b mbs2 accum1 f32 bf16".
std::string describe(const TrainConfig& cfg);

}  // namespace loom::trainer

#endif  // LOOM_TRAINER_CONFIG_H_
