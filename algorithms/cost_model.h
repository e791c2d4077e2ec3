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
//   intra.alpha_us 2.5
//   intra.gbps 6.0
//   inter.alpha_us 30
//   inter.gbps 1.5
//   reduce.gbps 4.0
//   step.us 0.4
//   wake.us 15
//   window.us 0.8
//   copy.gbps 13
//
// Thread-safety: values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "algorithms/algorithm.h"
#include "base/status.h"

namespace loom::algo {

struct LinkCost {
  double alphaUs = 0;  // latency of one message
  double gbps = 1;     // bandwidth, 1e9 bytes per second
  double usPerByte() const { return gbps > 0 ? 1e-3 / gbps : 1e9; }
  bool operator==(const LinkCost&) const = default;
};

struct CostModel {
  LinkCost intra{2.5, 6.0};
  LinkCost inter{30.0, 1.5};
  double reduceGbps = 4.0;  // γ: bytes of input combined per second (1e9)
  double stepUs = 0.4;      // executor overhead per schedule step
  double wakeUs = 15.0;     // extra latency per step when ranks outnumber CPUs
  double windowUs = 0.8;    // one flag hand-off between ranks through the host window
  double copyGbps = 13.0;   // memcpy within a host (staging into and reading from the window)

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

// Predicted microseconds of `algorithm` for a call of `bytes` (collectiveBytes) on this
// topology, or a negative value when the model has no formula for it.
double predictUs(const Algorithm& algorithm, const CollectiveArgs& args, uint64_t bytes,
                 const CostModel& model, const Topology& topology);

}  // namespace loom::algo
