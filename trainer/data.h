// data.h - the synthetic data set: sequences that are a pure function of their global sample
// index, and the split of a step's batch into DP slices and micro-batches.
#ifndef LOOM_TRAINER_DATA_H_
#define LOOM_TRAINER_DATA_H_

#include <cstdint>
#include <vector>

namespace loom::trainer {

// Writes the kSeq tokens of sample i: x_{t+1} = (a x_t + c) mod V with (a, c) chosen by
// hash(i) from {(5,1), (9,7), (13,3), (17,11)} and x_0 = hash(i) mod V.
void makeSequence(uint64_t sample, int32_t* tokens);

// One micro-batch: `count` consecutive samples starting at global index `firstSample`.
struct MicroBatch {
  int index = 0;  // within the step, on this DP rank
  uint64_t firstSample = 0;
  int count = 0;
};

// The micro-batches of DP rank `dpRank` at step `step` (0-based): its contiguous slice
// [r*B/DP, (r+1)*B/DP) of the step's B samples, cut into pieces of `mbs` (the last may be
// smaller).
std::vector<MicroBatch> microBatches(int step, int dpRank, int dpSize, int mbs);

// Tokens of a micro-batch, [count * kSeq], and its targets: the next token, or -1 at the last
// position of each sequence (no prediction there).
void microBatchTokens(const MicroBatch& mb, std::vector<int32_t>* tokens,
                      std::vector<int32_t>* targets);

}  // namespace loom::trainer

#endif  // LOOM_TRAINER_DATA_H_
