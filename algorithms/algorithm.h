// Algorithm: one way to do one collective. Algorithms never choose themselves; the planner
// (algorithms/planner.h) does, by name, override or cost.
//
// Each algorithm lives in its own file named <collective>_<method>.cpp and registers itself in
// the registry (registry.cpp) under (collective, name).
//
// Thread-safety: algorithms are stateless; build() may run concurrently.
#pragma once

#include <string_view>
#include <vector>

#include "algorithms/schedule.h"
#include "base/status.h"

namespace loom::algo {

class Algorithm {
 public:
  virtual ~Algorithm() = default;
  virtual Collective collective() const = 0;
  // Lower-case method name: "ring", "chain", "binomial", "pairwise", "linear", "dissemination".
  virtual std::string_view name() const = 0;
  // Whether build() can handle these arguments (e.g. nranks limits). Never errors.
  virtual bool supports(const CollectiveArgs& args) const = 0;
  // This rank's schedule. Pure: the same arguments always give the same schedule, on every
  // rank, which is what makes sends and receives match. InvalidArgument for unsupported args.
  virtual Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const = 0;
};

// Every registered algorithm for a collective, in registration order (built once).
const std::vector<const Algorithm*>& algorithmsFor(Collective c);
// nullptr when no algorithm of that name exists for c.
const Algorithm* findAlgorithm(Collective c, std::string_view name);
// Whether the runtime runs `algorithm` through the host window for these arguments instead of
// executing its schedule: one_shot and two_shot AllReduce, and one_shot AllGather,
// ReduceScatter, Broadcast, Reduce and AllToAll, when args.windowBytes > 0 (and the window
// holds a piece of every block: ReduceScatter, AllToAll) (algorithms/direct_common.h,
// runtime/direct.h).
bool runsInWindow(const Algorithm& algorithm, const CollectiveArgs& args);

// Builds the schedule of every rank (for the verifier and tools). Send and Recv differ per rank
// (one side sends, its peer receives), so for them build each rank's own call and check the
// exchange with verifyPointToPoint (verify.h); buildAll fails on the rank that is its own peer.
Status buildAll(const Algorithm& algorithm, const CollectiveArgs& args, Schedule* out);

}  // namespace loom::algo
