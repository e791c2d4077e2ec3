// The cost model: predicted time of an algorithm for a call, from α-β-γ link parameters.
//
// Every message between two ranks costs α + bytes·β on the path between them; reducing costs
// γ per byte of input combined; every schedule step pays a fixed executor overhead. Paths are
// coarse today: "intra" (two ranks of one host: shared memory) and "inter" (different hosts:
// the network). A flat algorithm on several hosts is bounded by its slowest hop, so it is
// priced at the inter parameters; a hierarchical one prices its intra- and inter-host messages
// apart, with hosts and ranks per host from CollectiveArgs::hosts. When ranks outnumber a host's
// CPUs, every step on which a rank waits for a peer also pays a wake-up (the peer has to be
// scheduled), which favours algorithms with few steps.
//
// The formulas live in cost_model.cpp, one per (collective, algorithm) — the exact expressions
// are in docs/ALGORITHMS.md. An algorithm without a formula is never chosen by cost (only by
// LOOM_ALGO).
//
// Parameters come from defaults measured on a small host (tuned for shared memory and TCP on
// loopback), or from a tuning profile written by `loom-perf --calibrate` (LOOM_TUNING_FILE):
//   # comment
//   intra.alpha_us 1.5
//   intra.gbps 6.0
//   inter.alpha_us 30
//   inter.gbps 1.5
//   reduce.gbps 4.0
//   step.us 0.4
//   wake.us 15
//   window.us 0.8
//   copy.gbps 20
//   measured.np4 allreduce:0-32K@one_shot,32K-inf@two_shot;alltoall:0-inf@one_shot
//
// A "measured.np<N>" line holds the algorithms `loom-perf --calibrate --tune N` timed fastest
// on this machine for communicators of N ranks, in LOOM_ALGO syntax (planner.h). They replace
// the formulas' choice only where they were measured: N processes of one host with the host
// window (args.windowBytes > 0), and sizes a range holds; everything else is priced by the
// formulas. (The formulas are a linear model; on a small host caches and scheduling move the
// crossovers by 2x and more, which a measured table of the machine does not miss. Open MPI's
// tuned collectives read measured decision rules in the same way.)
//
// Thread-safety: values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "algorithms/algorithm.h"
#include "base/status.h"

namespace loom::algo {

struct LinkCost {
  double alphaUs = 0;  // latency of one message
  double gbps = 1;     // bandwidth, 1e9 bytes per second
  double usPerByte() const { return gbps > 0 ? 1e-3 / gbps : 1e9; }
  bool operator==(const LinkCost&) const = default;
};

// An algorithm for the calls of a size range (a LOOM_ALGO choice, planner.h, or a measured one).
inline constexpr uint64_t kNoUpperBound = UINT64_MAX;
struct AlgoChoice {
  uint64_t minBytes = 0;              // inclusive
  uint64_t maxBytes = kNoUpperBound;  // exclusive; kNoUpperBound: none
  const Algorithm* algorithm = nullptr;
  bool holds(uint64_t bytes) const {
    return bytes >= minBytes && (maxBytes == kNoUpperBound || bytes < maxBytes);
  }
  bool operator==(const AlgoChoice&) const = default;
};

// One range of a measured.np<N> line: calls of `collective` on N ranks that `choice` holds.
struct MeasuredRange {
  int nranks = 0;
  Collective collective = Collective::kAllReduce;
  AlgoChoice choice;
  bool operator==(const MeasuredRange&) const = default;
};

struct CostModel {
  LinkCost intra{1.5, 6.0};
  LinkCost inter{30.0, 1.5};
  double reduceGbps = 4.0;  // γ: bytes of input combined per second (1e9)
  double stepUs = 0.4;      // executor overhead per schedule step
  double wakeUs = 15.0;     // extra latency per step when ranks outnumber CPUs
  double windowUs = 0.8;    // one flag hand-off between ranks through the host window
  double copyGbps = 20.0;   // memcpy within a host (staging into and reading from the window)
  std::vector<MeasuredRange> measured;  // measured.np<N> lines, by N, then collective, then size

  // Parses a tuning profile (format above). Unknown keys and bad values are InvalidArgument
  // naming the line; missing keys keep their defaults.
  static Result<CostModel> parse(std::string_view text);
  std::string format() const;  // the profile text; parse(format()) == *this
  bool operator==(const CostModel&) const = default;
};

// What the planner knows about the communicator's machine.
struct Topology {
  int nhosts = 1;
  int maxRanksPerHost = 1;
  bool oversubscribed = false;
};

// The algorithm a measured.np<N> line gives this call, or nullptr when none holds it (another
// rank count, several hosts, no host window, or a size no range holds).
const Algorithm* measuredAlgorithm(const CostModel& model, const CollectiveArgs& args,
                                   uint64_t bytes, const Topology& topology);

// Predicted microseconds of `algorithm` for a call of `bytes` (collectiveBytes) on this
// topology, or a negative value when the model has no formula for it.
double predictUs(const Algorithm& algorithm, const CollectiveArgs& args, uint64_t bytes,
                 const CostModel& model, const Topology& topology);

}  // namespace loom::algo
