// Helpers shared by the algorithm files (internal to the algorithms layer).
//
// Every algorithm splits its data into per-channel parts (channelPart), each an independent
// instance of the algorithm on one channel, and names regions with inputRegion / outputRegion /
// scratchRegion. Argument checks are shared so that supports() and build() agree.
#pragma once

#include <cstdint>
#include <string>

#include "algorithms/algorithm.h"
#include "algorithms/schedule.h"
#include "base/status.h"

namespace loom::algo {

inline Region inputRegion(uint64_t offset, uint64_t count) {
  return {BufferId::kInput, offset, count};
}
inline Region outputRegion(uint64_t offset, uint64_t count) {
  return {BufferId::kOutput, offset, count};
}
inline Region scratchRegion(uint64_t offset, uint64_t count) {
  return {BufferId::kScratch, offset, count};
}

// a mod n in [0, n), for any int a (n > 0).
inline int modRank(int64_t a, int n) {
  const int64_t m = a % n;
  return static_cast<int>(m < 0 ? m + n : m);
}

// Whether args are well formed for their collective: nranks >= 1, nchannels >= 1, root and peer
// in range where used, a barrier's count 0, and nranks * count fits in 64 bits. Never errors.
bool argsValid(const CollectiveArgs& args);
// What is wrong with args ("root 5 outside [0, 4)"), or "" when argsValid(args).
std::string argsProblem(const CollectiveArgs& args);

// InvalidArgument (naming the algorithm and the offending field) unless args are valid, of the
// algorithm's collective and supported, and rank is in [0, nranks). build() starts with it.
Status checkBuild(const Algorithm& algorithm, const CollectiveArgs& args, int rank);

// One channel's share of `total` elements: the part [offset, offset + count).
struct Part {
  uint64_t offset = 0;
  uint64_t count = 0;
};

// Channels to use for `total` elements: min(args.nchannels, total), at least 1, so that every
// used channel has at least one element when total > 0.
int channelsFor(const CollectiveArgs& args, uint64_t total);
Part channelPart(uint64_t total, int nchannels, int channel);

// The j-th of `parts` near-equal chunks of a part, as an offset/count pair in the part's buffer.
Part chunkOf(const Part& part, int parts, int index);

// Starts out with `nchannels` empty channels and no scratch.
void resetSchedule(RankSchedule* out, int nchannels);

// The one-rank reduction: Copy(input -> output, finalize). In place it canonicalizes to a
// finalize-only self copy (schedule.h, "One rank").
void buildSingleRankReduction(uint64_t count, RankSchedule* out);

}  // namespace loom::algo
