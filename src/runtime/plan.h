// Plan: an algorithm's schedule for one rank, prepared for execution and cached.
//
// Preparing means: canonicalising in-place aliasing, choosing the slice size, and computing
// for every step which earlier steps of its channel it conflicts with (read-after-write,
// write-after-read, write-after-write on overlapping elements of one buffer). The executor uses
// these dependencies to run a step's slice as soon as the elements it touches are ready, which
// is what pipelines a ring's receive-reduce-forward without the algorithm saying so.
//
// Thread-safety: a Plan is immutable once built and shared by every execution that uses it.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "algorithms/algorithm.h"
#include "algorithms/schedule.h"
#include "base/status.h"

namespace loom::runtime {

// An earlier step `step` whose region `theirs` conflicts with this step's region `mine`
// (indices into regionsOf()), or, when `whole`, an earlier step that must finish entirely
// (zero-count steps are fences: schedule.h).
struct Dependency {
  uint32_t step;
  uint8_t mine;
  uint8_t theirs;
  bool whole = false;
};

struct StepPlan {
  algo::Step step;
  uint64_t sliceElems = 1;  // every slice but the last has this many elements
  uint32_t nslices = 1;     // at least 1: a zero-count network step is one empty message
  std::vector<Dependency> deps;
};

struct ChannelPlan {
  std::vector<StepPlan> steps;
  bool hasRecvReduce = false;
};

struct Plan {
  std::string algorithm;
  algo::CollectiveArgs args;
  int rank = 0;
  size_t elemBytes = 1;
  std::vector<ChannelPlan> channels;
  uint64_t scratchCount = 0;  // elements
};

// The regions a step reads and writes, for hazard analysis: up to 3, with a writes flag.
struct RegionUse {
  algo::Region region;
  bool writes;
};
int regionsOf(const algo::Step& step, RegionUse out[3]);

inline bool isNetworkStep(algo::StepKind k) {
  return k == algo::StepKind::kSend || k == algo::StepKind::kRecv ||
         k == algo::StepKind::kRecvReduce;
}

// Builds and prepares a plan. sliceBytes is rounded down to whole elements (at least one).
Result<std::shared_ptr<const Plan>> buildPlan(const algo::Algorithm& algorithm,
                                              const algo::CollectiveArgs& args, int rank,
                                              size_t elemBytes, size_t sliceBytes);

// A bounded cache of plans, keyed by everything that shapes a schedule. Thread-safe.
class PlanCache {
 public:
  explicit PlanCache(size_t capacity = 256) : capacity_(capacity) {}
  Result<std::shared_ptr<const Plan>> get(const algo::Algorithm& algorithm,
                                          const algo::CollectiveArgs& args, int rank,
                                          size_t elemBytes, size_t sliceBytes);
  size_t size() const;

 private:
  using Key = std::tuple<const algo::Algorithm*, int, uint64_t, int, int, int, bool, int, size_t,
                         size_t, algo::HostLayout>;
  size_t capacity_;
  mutable std::mutex mu_;
  std::list<Key> lru_;  // front = most recent
  std::map<Key, std::pair<std::shared_ptr<const Plan>, std::list<Key>::iterator>> map_;
};

}  // namespace loom::runtime
