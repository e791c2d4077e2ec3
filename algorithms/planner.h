// The planner: which algorithm runs a collective call (DESIGN.md section 3, "Planner").
//
// Overrides come first: LOOM_ALGO (Config::algo) or a per-call option, parsed once per
// communicator by parseAlgoOverrides. Without an override the default rule (defaultAlgorithm)
// decides: the tuning profile's measured choice where it has one for the call, else the
// supported algorithm with the least time predicted by the cost model (cost_model.h), from the
// communicator's topology and tuning profile (LOOM_TUNING_FILE).
//
// LOOM_ALGO syntax: entries separated by ';', each "<collective>:<choices>", where choices is
// one algorithm name or a ','-separated list of "<lo>-<hi>@<algorithm>" size ranges:
//   allreduce:ring;broadcast:chain
//   broadcast:0-64K@binomial,64K-inf@chain
// Sizes are bytes with an optional K, M or G suffix (powers of 1024); "inf" has no upper bound.
// A range holds sizes lo <= bytes < hi; the first range that holds the call's size wins, and a
// call no range holds falls back to the default rule. Names are case-insensitive; blanks around
// tokens are ignored. The size of a call is collectiveBytes().
//
// Thread-safety: parsing and choosing are pure; AlgoOverrides is an immutable value after
// parsing. The algorithms it points to are static (registry) and live for the process.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "algorithms/algorithm.h"
#include "algorithms/cost_model.h"
#include "algorithms/schedule.h"
#include "base/status.h"

namespace loom::algo {

struct AlgoOverrides {
  std::array<std::vector<AlgoChoice>, kNumCollectives> byCollective;

  bool empty() const;
  // The override for a call of `bytes` bytes, or nullptr when none applies.
  const Algorithm* find(Collective c, uint64_t bytes) const;
};

// Parses a LOOM_ALGO value ("" gives no overrides). InvalidArgument names the bad token: an
// unknown collective or algorithm (with the known ones), a malformed size or range, an empty
// range, or a collective given twice.
Result<AlgoOverrides> parseAlgoOverrides(std::string_view spec);

// The size the planner compares with ranges: bytes of the largest user buffer of the call
// (count * elementBytes, times nranks for AllGather, ReduceScatter, AllToAll, Gather and
// Scatter). Saturates instead of overflowing.
uint64_t collectiveBytes(const CollectiveArgs& args, size_t elementBytes);

// How a call was planned (for TUNING logs and tools).
struct Choice {
  const Algorithm* algorithm = nullptr;
  uint64_t bytes = 0;       // collectiveBytes of the call
  double predictedUs = -1;  // the cost model's prediction; < 0: no formula for it
  bool overridden = false;  // LOOM_ALGO (or a per-call option) chose it
  bool measured = false;    // a measured.np<N> line of the tuning profile chose it
};

// The default rule (no override): the tuning profile's measured choice where one holds the call
// (measuredAlgorithm, cost_model.h), else of the algorithms that support the call the one with
// the least predicted time (cost_model.h); ties go to the first registered. Algorithms without a
// formula are chosen only when none has one. Never nullptr for a collective with a registered
// algorithm (when none supports args it returns the first, whose supports() names the problem).
const Algorithm* defaultAlgorithm(const CollectiveArgs& args, uint64_t bytes,
                                  const CostModel& model = {}, const Topology& topology = {},
                                  double* predictedUs = nullptr);

// The algorithm for a call: the override if one applies (InvalidArgument if it does not support
// args), else the default rule (InvalidArgument if that does not support args either).
Result<const Algorithm*> chooseAlgorithm(const CollectiveArgs& args, size_t elementBytes,
                                         const AlgoOverrides& overrides,
                                         const CostModel& model = {}, const Topology& topology = {},
                                         Choice* choice = nullptr);

}  // namespace loom::algo
