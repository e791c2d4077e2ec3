// The simulator (DESIGN.md section 3): replays a Schedule on a network to predict its time.
//
// Model. Every rank's channels run as the executor runs them (schedule.h): a step starts as soon
// as the earlier steps of its channel that touch the same elements have finished them (read
// after write, write after read, write after write), so independent steps overlap. Steps are cut
// into slices (SimOptions::sliceBytes, at most maxSlicesPerStep), and a slice waits only for the
// slices of earlier steps that hold its elements: that is the executor's pipelining. The k-th
// Send from a to b on channel c meets the k-th Recv/RecvReduce of b from a on c; a slice of the
// message starts when both sides are ready (no transport buffering, as the verifier assumes).
//
// A message slice is a flow: it waits the route's latency α (plus SimOptions::stepUs on a
// step's first slice), then its bytes drain through every link of the route at once. A
// RecvReduce's flow also crosses the receiver's compute link (γ: the reduction is fused with the
// receive, as the executor pipelines it); Copy and Reduce steps are flows on the rank's compute
// link only. Links are shared: a flow's rate is the smallest over its links of
// capacity / (flows on that link) — each link is split evenly among its flows, and a flow held
// back elsewhere does not hand its unused share to the others (no max-min redistribution), so
// mixed bottlenecks can make predictions slightly pessimistic. Two flows on one link take twice
// as long as one.
//
// Scale. simulate() is exact (every slice of every step of every rank is an event). For
// schedules too large for that, simulateRounds() cuts every channel into rounds (a round ends
// where a step touches elements an earlier step of the round touched) and, when the schedule is
// periodic (rank r + P has the rounds of rank r, with peers shifted by P; P = 1 for a ring, the
// ranks per host for a hierarchical schedule), simulates each distinct round once, exactly, with
// all ranks and channels in it at once (so contention is exact within the round), and adds the
// rounds' times as if a barrier separated them. What is aggregated: rounds do not overlap (no
// pipelining from one round into the next), and every rank of a class moves the largest count
// any rank of the class moves in that step (counts differ by at most a chunk's rounding). Past
// SimOptions::maxRoundCheckSteps, symmetry and counts are taken from a sample of ranks (the
// result's method says so). docs/SIM.md compares both methods where both run.
//
// Thread-safety: pure functions over immutable inputs; a SimNetwork must not change while a
// simulation uses it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "algorithms/algorithm.h"
#include "algorithms/schedule.h"
#include "base/status.h"
#include "topology/cluster.h"
#include "topology/system.h"

namespace loom::algo {

// A shared resource bytes flow through: one direction of a wire, a switch port, a rank's
// reduction engine.
struct SimLink {
  std::string name;  // "node000 GPU0->NVS", "rail3 leaf0 up", "r5 compute"
  double gbps = 1;   // capacity, 1e9 bytes per second
};

// How a message from one rank reaches another.
struct SimRoute {
  double latencyUs = 0;    // α: the message's latency before its bytes flow
  std::vector<int> links;  // every link the bytes cross (indices into SimNetwork::links())
};

// Ranks, links and routes. Owns its links; routes are computed on demand (a cluster of 16,384
// ranks has too many rank pairs to store). Implementations are immutable after construction.
class SimNetwork {
 public:
  virtual ~SimNetwork() = default;
  virtual int nranks() const = 0;
  virtual const std::vector<SimLink>& links() const = 0;
  // The route of a message src -> dst (src != dst). InvalidArgument for ranks out of range or
  // unreachable pairs.
  virtual Status route(int src, int dst, SimRoute* out) const = 0;
  // The link that carries a rank's local copies and reductions (γ).
  virtual int computeLink(int rank) const = 0;
  // Text for tools: what a rank is ("node003 GPU5").
  virtual std::string rankName(int rank) const = 0;
};

// n ranks, each with its own send port, receive port and compute link: a message costs
// alphaUs + bytes / gbps, alone. The network of the unit tests and of hosts without GPUs.
class UniformNetwork final : public SimNetwork {
 public:
  UniformNetwork(int nranks, double alphaUs, double gbps, double computeGbps);
  int nranks() const override { return nranks_; }
  const std::vector<SimLink>& links() const override { return links_; }
  Status route(int src, int dst, SimRoute* out) const override;
  int computeLink(int rank) const override { return 3 * rank + 2; }
  std::string rankName(int rank) const override { return "r" + std::to_string(rank); }

 private:
  int nranks_;
  double alphaUs_;
  std::vector<SimLink> links_;
};

// Ranks on the GPUs of topology hosts (topology/system.h, cluster.h), host by host in GPU index
// order: rank r is GPU r % g of host r / g when every host has g GPUs. Links are the hosts' own
// graph links, one per direction (NVLink to the NVSwitch, PCIe, the NIC's port), the fabric
// (per rail and leaf group: the leaf's uplinks and downlinks to the spine, as many as the leaf
// has hosts, so the fat tree is non-blocking) and per rank a compute link of kGpuReduceGbps.
// A message inside a host follows the fewest-hop, widest path (topology's rule); between hosts
// it goes GPU -> its closest NIC -> port -> leaf [-> spine -> leaf] -> port -> NIC -> GPU, with
// the latency of Cluster::path.
inline constexpr double kGpuReduceGbps = 1000;  // HBM3: reads 2 and writes 1 byte per byte
Result<std::unique_ptr<SimNetwork>> makeHostNetwork(const topo::System& host, int nranks);
// Keeps a reference to `cluster`, which must outlive the network.
Result<std::unique_ptr<SimNetwork>> makeClusterNetwork(const topo::Cluster& cluster, int nranks);

struct SimOptions {
  uint64_t elementBytes = 4;
  uint64_t sliceBytes = 512 * 1024;  // the executor's slice (pipelining unit)
  int maxSlicesPerStep = 16;         // at most this many slices per step
  double stepUs = 0.4;               // fixed overhead of a step (paid on its first slice)
  bool record = false;               // fill SimResult::steps and ::linkBusy
  // Exact simulation refuses schedules with more steps than this (simulateRounds takes over).
  uint64_t maxExactSteps = 4'000'000;
  // Slices in all: maxSlicesPerStep is lowered for large schedules to stay under it.
  uint64_t maxExactSlices = 2'000'000;
  // simulateRounds: ranks r and r + roundPeriod must do the same (relative to themselves); 1
  // for a schedule that treats every rank alike, the ranks per host for hierarchical ones. A
  // period that does not divide nranks counts as 1.
  int roundPeriod = 1;
  // simulateRounds builds and compares every rank when that is at most this many steps, else
  // whole periods of ranks spread over the job (the first two, the last, and evenly between)
  // up to this budget; SimResult::method then says how many ranks were checked. Building every
  // rank of a 16,384-rank ring is 5e8 steps, minutes on its own.
  uint64_t maxRoundCheckSteps = 20'000'000;
};

// One step as it ran (SimOptions::record).
struct SimStepRecord {
  int rank = 0;
  int channel = 0;
  int step = 0;
  StepKind kind = StepKind::kSend;
  int peer = -1;
  uint64_t bytes = 0;
  double startUs = 0;  // its first slice started (for a message: both sides were ready)
  double endUs = 0;    // its last slice finished
};

// A span during which a link carried at least one flow (SimOptions::record).
struct SimLinkBusy {
  int link = 0;
  double startUs = 0;
  double endUs = 0;
};

struct SimResult {
  double timeUs = 0;       // when the last step of any rank finished
  std::string method;      // "exact" or "rounds (N distinct of M)"
  uint64_t stepCount = 0;  // steps simulated (all ranks; for rounds: of the distinct rounds)
  uint64_t slices = 0;
  uint64_t flows = 0;
  std::vector<double> rankEndUs;       // per rank: when its last step finished
  std::vector<double> linkBytes;       // per link: bytes carried
  std::vector<SimStepRecord> records;  // record: every step, in (rank, channel, step) order
  std::vector<SimLinkBusy> linkBusy;   // record: busy spans, in time order per link
};

// Exact simulation of every rank of `schedule` on `network` (network.nranks() must equal the
// schedule's). InvalidArgument for a schedule whose messages do not match (a send without its
// receive, counts that differ), one that deadlocks, or one over the size limits.
Result<SimResult> simulate(const Schedule& schedule, const SimNetwork& network,
                           const SimOptions& options);

// Builds rank schedules one at a time (rank, out); simulateRounds never holds more than a few.
using RankBuilder = std::function<Status(int rank, RankSchedule* out)>;

// The aggregated method (header comment) for args.nranks ranks. InvalidArgument when the
// schedule is not round-symmetric (then only simulate() can run it) or a round is too large.
Result<SimResult> simulateRounds(const CollectiveArgs& args, const RankBuilder& build,
                                 const SimNetwork& network, const SimOptions& options);

// Exact when the schedule (counted from rank 0 x nranks) fits SimOptions::maxExactSteps, else
// rounds. The schedule is built with `algorithm`.
Result<SimResult> simulateAlgorithm(const Algorithm& algorithm, const CollectiveArgs& args,
                                    const SimNetwork& network, const SimOptions& options);

}  // namespace loom::algo
