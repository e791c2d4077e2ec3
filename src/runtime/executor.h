// Execution: runs one rank's share of an operation (one or more channel programs) over its
// connections, without blocking.
//
// Each step is cut into slices (Plan). progress() posts every slice whose dependencies are
// satisfied and whose connection has room (LOOM_PIPELINE_DEPTH slices in flight per connection
// and direction), executes local copies/reductions, and completes what the transports report
// finished. Messages to one peer on one lane are posted in program order, which is what makes
// them match the peer's receives (transport.h). A receive-reduce lands in a staging slot and is
// combined into its destination when it completes.
//
// Ownership: the Execution borrows the Plan (kept alive by the shared_ptr it holds), the user
// buffers and the scratch memory (the caller guarantees both outlive it), and its lanes (owned
// by the communicator's LaneTable, which outlives every Execution; lanes.h).
// Thread-safety: one thread at a time calls progress().
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/status.h"
#include "runtime/lanes.h"
#include "runtime/plan.h"
#include "transports/transport.h"

namespace loom::runtime {

struct Program {
  std::shared_ptr<const Plan> plan;  // keeps the channel alive
  const ChannelPlan* channel = nullptr;
  std::byte* buffers[3] = {nullptr, nullptr, nullptr};  // indexed by algo::BufferId
  int lane = 0;
  uint64_t tag = 0;  // carried by every message of this program (transport.h)
};

// What an execution is doing, for messages. Formatted only when a message is needed, so the
// per-operation path builds no strings.
struct OpLabel {
  algo::Collective collective = algo::Collective::kAllReduce;
  uint64_t seq = 0;
  uint64_t count = 0;
  DataType dtype = DataType::kFloat32;
  RedOpKind op = RedOpKind::kSum;
  const char* algorithm = "";  // an algorithm's static name
  size_t nops = 1;             // > 1: a group of Send/Recv operations
  // "allreduce #12 (1000 x float, sum, ring)".
  std::string toString() const;
};

struct ExecParams {
  DataType dtype = DataType::kFloat32;
  RedOpKind op = RedOpKind::kSum;  // Avg divides by `divisor` where a step finalizes
  uint64_t divisor = 1;
  size_t elemBytes = 4;
  int pipelineDepth = 8;
  size_t sliceBytes = 131072;
  OpLabel label;
};

using LaneProvider = std::function<Result<LaneState*>(int peer, int lane, bool send)>;

// The schedule executor. An operation that does not run a schedule over connections (the direct
// AllReduce through the host window, direct.h) derives from it and overrides progress(), done(),
// stallReport() and waitInPlace().
class Execution {
 public:
  Execution(ExecParams params, std::vector<Program> programs, LaneProvider lanes);
  virtual ~Execution();
  Execution(const Execution&) = delete;
  Execution& operator=(const Execution&) = delete;

  // One non-blocking pass. Sets *progressed when anything was posted or completed.
  virtual Status progress(bool* progressed);
  virtual bool done() const { return remainingSteps_ == 0; }

  // Where the execution is waiting, for timeout messages: the first unfinished step of each
  // program with its peer (described by describePeer when given), its slice counts and the last
  // progress heard from that peer on the step's lane.
  virtual std::string stallReport(
      const std::function<std::string(int)>& describePeer = nullptr) const;
  // Whether this execution's peers wake it some other way than by ringing the rank's doorbell
  // (the host window's futex); then the driver sleeps in waitInPlace when it is the only unit,
  // and otherwise keeps its doorbell sleeps short. waitInPlace returns false when it did not
  // sleep (nothing to wait for).
  virtual bool sleepsInPlace() const { return false; }
  virtual bool waitInPlace(int /*timeoutMs*/) { return false; }
  const ExecParams& params() const { return params_; }
  uint64_t bytesSent() const { return bytesSent_; }
  // The lanes this execution used (for the engine's lingering sends, engine.h).
  const std::vector<LaneState*>& lanes() const { return lanes_; }
  uint64_t bytesReceived() const { return bytesRecv_; }

 protected:
  // For an execution that is reused for the next call (DirectExecution::reset).
  void resetParams(ExecParams params) {
    params_ = std::move(params);
    bytesSent_ = 0;
    bytesRecv_ = 0;
  }

  void setLabelSeq(uint64_t seq) { params_.label.seq = seq; }

  uint64_t bytesSent_ = 0;
  uint64_t bytesRecv_ = 0;

 private:
  struct StepState {
    uint32_t posted = 0;
    uint32_t completed = 0;
  };
  using Lane = LaneState;

  Result<Lane*> laneFor(int peer, int lane, bool send);
  std::string lastHeard(int peer, int lane) const;
  Status postReady(size_t p, bool* progressed);
  bool dependenciesMet(size_t p, size_t i, uint32_t slice) const;
  Status postSlice(size_t p, size_t i, Lane* lane);
  void runLocalSlice(size_t p, size_t i);
  Status reapCompletions(Lane* lane, bool* progressed);
  void finishSlice(size_t p, size_t i);
  void finalizeSlice(const algo::Step& step, std::byte* dst, uint64_t count);
  std::byte* at(size_t p, const algo::Region& r, uint64_t elemOffset) const;

  ExecParams params_;
  std::vector<Program> programs_;
  LaneProvider laneProvider_;
  std::vector<std::vector<StepState>> state_;
  std::vector<size_t> firstUnposted_;  // per program: steps before it are fully posted
  std::vector<Lane*> lanes_;           // the lanes this execution has used so far
  size_t remainingSteps_ = 0;
};

}  // namespace loom::runtime
