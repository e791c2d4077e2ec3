// Shared by the direct algorithms (allreduce_one_shot.cpp, allreduce_two_shot.cpp and the other
// *_one_shot.cpp).
//
// All exist in two forms. As schedules (this layer) they are plain message exchanges that the
// verifier proves like any other algorithm and that run over any transport. When every rank of
// the communicator is a process on one host, the runtime instead runs the same algorithm
// through a host-shared window (runtime/direct.h): each rank stages its input once and its
// peers read it directly, with no message, FIFO or second copy in between. Results are the same
// either way: every output element is combined in rank order 0, 1, .., n-1 by one rank.
#pragma once

#include <vector>

#include "algorithms/builder.h"

namespace loom::algo {

// dst = sources[0] (op) sources[1] (op) ... in that order, finalizing with the last step. At
// least two sources; none may overlap dst unless identical to it.
inline void combineInRankOrder(const std::vector<Region>& sources, const Region& dst,
                               std::vector<Step>* steps) {
  const size_t n = sources.size();
  steps->push_back(Step::reduce(sources[0], sources[1], dst, /*finalize=*/n == 2));
  for (size_t q = 2; q < n; ++q)
    steps->push_back(Step::reduce(dst, sources[q], dst, /*finalize=*/q + 1 == n));
}

// combineInRankOrder of n inputs: rank r's is `own`, every other rank q's is block(q).
template <typename Block>
void combineOwnAndBlocks(const Region& own, int r, int n, Block block, const Region& dst,
                         std::vector<Step>* steps) {
  std::vector<Region> sources;
  for (int q = 0; q < n; ++q)
    sources.push_back(q == r ? own : block(q));
  combineInRankOrder(sources, dst, steps);
}

}  // namespace loom::algo
