#include "data.h"

#include "config.h"
#include "rng.h"

namespace loom::trainer {

void makeSequence(uint64_t sample, int32_t* tokens) {
  static constexpr int kA[4] = {5, 9, 13, 17};
  static constexpr int kC[4] = {1, 7, 3, 11};
  const uint64_t h = splitmix64(sample);
  const int pick = static_cast<int>((h >> 8) & 3u);
  int x = static_cast<int>(h % Dims::kVocab);
  for (int t = 0; t < Dims::kSeq; ++t) {
    tokens[t] = x;
    x = (kA[pick] * x + kC[pick]) % Dims::kVocab;
  }
}

std::vector<MicroBatch> microBatches(int step, int dpRank, int dpSize, int mbs) {
  const int begin = dpRank * Dims::kBatch / dpSize;
  const int end = (dpRank + 1) * Dims::kBatch / dpSize;
  std::vector<MicroBatch> out;
  for (int first = begin; first < end; first += mbs) {
    MicroBatch mb;
    mb.index = static_cast<int>(out.size());
    mb.firstSample = static_cast<uint64_t>(step) * Dims::kBatch + static_cast<uint64_t>(first);
    mb.count = first + mbs <= end ? mbs : end - first;
    out.push_back(mb);
  }
  return out;
}

void microBatchTokens(const MicroBatch& mb, std::vector<int32_t>* tokens,
                      std::vector<int32_t>* targets) {
  const int n = mb.count * Dims::kSeq;
  tokens->resize(n);
  targets->resize(n);
  for (int j = 0; j < mb.count; ++j) {
    int32_t* seq = tokens->data() + j * Dims::kSeq;
    makeSequence(mb.firstSample + static_cast<uint64_t>(j), seq);
    for (int t = 0; t < Dims::kSeq; ++t)
      (*targets)[j * Dims::kSeq + t] = t + 1 < Dims::kSeq ? seq[t + 1] : -1;
  }
}

}  // namespace loom::trainer
