// Helpers shared by the algorithm files (internal to the algorithms layer).
//
// Every algorithm splits its data into per-channel parts (channelPart), each an independent
// instance of the algorithm on one channel, and names regions with inputRegion / outputRegion /
// scratchRegion. Argument checks are shared so that supports() and build() agree.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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

// build() of a collective that only moves data (no reduction): checks the call, leaves the
// schedule empty for count 0 or one rank in place, else builds one part of args.count per
// channel with buildPart(part, channel).
template <typename BuildPart>
Status buildMovingChannels(const Algorithm& algorithm, const CollectiveArgs& args, int rank,
                           RankSchedule* out, BuildPart buildPart) {
  LOOM_RETURN_IF_ERROR(checkBuild(algorithm, args, rank));
  resetSchedule(out, 0);
  if (args.count == 0 || (args.nranks == 1 && args.inPlace)) return Status::ok();
  const int nch = channelsFor(args, args.count);
  resetSchedule(out, nch);
  for (int c = 0; c < nch; ++c)
    buildPart(channelPart(args.count, nch, c), &out->channels[c]);
  return Status::ok();
}

// The one-rank reduction: Copy(input -> output, finalize). In place it canonicalizes to a
// finalize-only self copy (schedule.h, "One rank").
void buildSingleRankReduction(uint64_t count, RankSchedule* out);

// build() of a reduction: checks the call, leaves the schedule empty for count 0, builds the
// one-rank reduction for one rank, else builds one part of args.count per channel with
// buildPart(part, channel).
template <typename BuildPart>
Status buildReducingChannels(const Algorithm& algorithm, const CollectiveArgs& args, int rank,
                             RankSchedule* out, BuildPart buildPart) {
  LOOM_RETURN_IF_ERROR(checkBuild(algorithm, args, rank));
  resetSchedule(out, 0);
  if (args.count == 0) return Status::ok();
  if (args.nranks == 1) {
    buildSingleRankReduction(args.count, out);
    return Status::ok();
  }
  const int nch = channelsFor(args, args.count);
  resetSchedule(out, nch);
  for (int c = 0; c < nch; ++c)
    buildPart(channelPart(args.count, nch, c), &out->channels[c]);
  return Status::ok();
}

// Chunks [first, last) of a part split into `parts` chunks (chunkOf), as one contiguous run.
Part chunkRange(const Part& part, int parts, int first, int last);

// `part` of blocks [first, first + blocks) of a buffer of consecutive blocks of blockCount
// elements each (block b starts at b * blockCount): one run when the part spans whole blocks
// (then consecutive blocks are contiguous), else one run per block. No run is empty; none at all
// when part.count or blocks is 0.
std::vector<Part> blockRuns(uint64_t blockCount, const Part& part, int first, int blocks);
// The same for blocks first, first+1, .. (mod n), `blocks` of them (at most n): runs never wrap
// around block n-1, so a range that does is cut there.
std::vector<Part> blockRunsMod(uint64_t blockCount, const Part& part, int n, int first, int blocks);
inline Region regionOf(BufferId buffer, const Part& run) {
  return {buffer, run.offset, run.count};
}

// The fold of n ranks onto p = the largest power of two <= n, for recursive doubling and halving
// on any n (MPICH's scheme). With rem = n - p, the ranks below 2 rem pair up (2i, 2i+1): the
// even one is an extra, which hands its data to its odd partner (the proxy) and receives the
// result from it at the end; the others take part. Participants get new ranks 0 .. p-1 in rank
// order; new rank v stands for the original ranks (blocks) [firstOf(v), firstOf(v + 1)): two for
// a proxy, one otherwise, so any range of new ranks covers a contiguous range of original ones.
struct Fold {
  int n = 1;
  int p = 1;
  int rem = 0;
  explicit Fold(int nranks);
  bool isExtra(int rank) const { return rank < 2 * rem && rank % 2 == 0; }
  bool isProxy(int rank) const { return rank < 2 * rem && rank % 2 == 1; }
  // New rank of a participant (-1 for an extra), and the participant holding new rank v.
  int newRank(int rank) const;
  int oldRank(int v) const { return v < rem ? 2 * v + 1 : v + rem; }
  // First original rank that new rank v stands for; firstOf(p) == n.
  int firstOf(int v) const { return v < rem ? 2 * v : v + rem; }
};

// One rank's links in one binary tree (-1: none). A single child is child0; with two,
// child0 < child1.
struct TreeLinks {
  int parent = -1;
  int child0 = -1;
  int child1 = -1;
};
// NCCL's double binary tree over ranks 0 .. n-1 (NCCL's ncclGetBtree / ncclGetDtree). Tree 0 is
// a binary tree in which rank 0 is the root with one child and every odd rank is a leaf; tree 1
// is tree 0 mirrored (rank n-1-r, n even) or shifted by one (rank r+1, n odd), so that a rank
// that is an inner node of one tree is a leaf of the other (but for one rank when n is odd).
TreeLinks doubleTreeLinks(int n, int rank, int tree);
// The root of tree 0 or 1: 0, and 1 (n odd and > 1) or n-1.
int doubleTreeRoot(int n, int tree);

}  // namespace loom::algo
