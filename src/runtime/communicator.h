// Communicator: a thin owner of one rank's membership in a group of ranks.
//
// It owns the Engine (transports, connections), the control-plane Bootstrap, the plan cache,
// the scratch arena, the asynchronous worker (a progress thread started on first async use),
// the sticky error and the counters. Operations reach it through Group (group.h), which
// assigns sequence numbers, runs units inline or on the worker, and drives several
// communicators at once.
//
// Lifetime: created by a collective init (every rank calls create with the same store prefix)
// and destroyed by destroy() or abort(). Thread-safety: one thread issues operations at a
// time (the C ABI's contract); abort(), asyncError() and counters() may be called from any
// thread; the worker thread and the issuing thread never drive the engine at the same time
// (engineMutex()).
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "algorithms/cost_model.h"
#include "algorithms/planner.h"
#include "base/config.h"
#include "base/cuda.h"
#include "base/status.h"
#include "bootstrap/bootstrap.h"
#include "bootstrap/store.h"
#include "runtime/device_direct.h"
#include "runtime/device_ipc.h"
#include "runtime/direct.h"
#include "runtime/engine.h"
#include "runtime/executor.h"
#include "runtime/lanes.h"
#include "runtime/op.h"
#include "runtime/plan.h"
#include "runtime/topo_fusion.h"
#include "runtime/work.h"

namespace loom::runtime {

struct Counters {
  uint64_t calls[algo::kNumCollectives] = {};
  uint64_t bytesSent[algo::kNumCollectives] = {};
  uint64_t bytesRecv[algo::kNumCollectives] = {};
};

// A unit prepared for execution: the Execution plus what it borrowed.
struct PreparedUnit {
  Unit unit;
  std::unique_ptr<Execution> execution;
  // Starts at the unit's first deadline check in the driver, not at prepare(): a clock read
  // per call is measurable at 8 bytes, and the first check comes within microseconds.
  Deadline deadline = Deadline::never();
  int timeoutMs = 0;
  bool deadlineStarted = false;
  bool trivial = false;                             // completed during preparation (e.g. count 0)
  std::vector<std::unique_ptr<std::byte[]>> owned;  // snapshots of sends a receive overwrites
};

class Communicator {
 public:
  struct Init {
    std::shared_ptr<bootstrap::Store> store;
    int rank = 0;
    int nranks = 1;
    uint64_t commHash = 0;
    std::array<uint8_t, 16> secret{};
    Config config;
    std::string name;  // for logs
  };

  // Collective over the Init's ranks: exchanges peer information and builds the engine.
  static Result<std::unique_ptr<Communicator>> create(Init init);
  ~Communicator();

  int rank() const { return init_.rank; }
  int nranks() const { return init_.nranks; }
  const Config& config() const { return init_.config; }
  const algo::CostModel& costModel() const { return costModel_; }
  const algo::Topology& planTopology() const { return planTopology_; }
  const algo::HostLayout& hostLayout() const { return hostLayout_; }
  // Bytes per buffer of the host window (direct.h); 0 when this communicator has none.
  uint64_t windowBytes() const { return window_ ? window_->capacity() : 0; }
  const std::string& name() const { return init_.name; }
  uint64_t commHash() const { return init_.commHash; }
  // "communicator <name> (0x<hash>)": how logs and errors name this communicator.
  std::string describe() const;
  Engine& engine() { return *engine_; }
  // Where the ranks are: hosts, places, paths (topo_fusion.h). Set by create.
  const TopoView& topology() const { return *topo_; }
  bootstrap::Bootstrap& bootstrap() { return *bootstrap_; }

  // Collective: ranks with equal color form a new communicator ordered by (key, rank); a
  // NOCOLOR rank (color < 0) takes part and gets nullptr.
  Result<std::unique_ptr<Communicator>> split(int color, int key, const Config& config);

  // OK while healthy; afterwards the first asynchronous error, forever (sticky).
  Status asyncError() const;
  void setAsyncError(const Status& status);
  Counters counters() const;

  // Stops everything now, from any thread: pending and future operations fail with Aborted.
  void abort();
  // The part of abort() that is async-signal-safe (engine.h): pending and later operations
  // fail with Aborted; asyncError() reports it. Frees nothing.
  void abortSignalSafe() { engine_->abortSignalSafe(); }
  bool aborted() const { return engine_->abortFlag().load(); }
  // Whether an asynchronous error has been set (cheap; asyncError() has the status).
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  // Waits for outstanding asynchronous work (bounded by the timeout) and stops the worker.
  Status quiesce();
  // The device-direct path (device_direct.h) when LOOM_CUDA_DIRECT is on and every rank is a
  // thread of this process; null otherwise. Created on first use, by the issuing thread.
  DeviceDirect* deviceDirect();
  // The CUDA IPC path (device_ipc.h) when LOOM_CUDA_IPC is on and every rank is on this host;
  // null otherwise. Created on first use, by the issuing thread.
  DeviceIpc* deviceIpc();
  // Queues a device call of the CUDA IPC path for the worker: once `stage` (zero bytes) says
  // the stream reached it, the worker runs it (DeviceIpc::run) and completes the stage.
  void enqueueDeviceIpc(const OpDesc& op, int device, std::shared_ptr<cuda::StreamStage> stage,
                        std::shared_ptr<WorkState> work);
  // A call that ran outside the engine (device_direct.h): counted like the others.
  void countCall(algo::Collective collective, uint64_t bytesSent, uint64_t bytesRecv);
  const std::atomic<bool>* abortFlagPtr() const { return &engine_->abortFlag(); }
  // The pinned staging memory budget of this rank's device calls (LOOM_CUDA_STAGE_BYTES).
  const std::shared_ptr<cuda::StageBudget>& stageBudget();

  // ---- used by Group ----
  // Sequence numbers, taken at submission in issue order.
  uint64_t nextCollectiveSeq() { return collectiveSeq_++; }
  // Reserves `n` consecutive collective sequence numbers; returns the first.
  uint64_t reserveCollectiveSeqs(uint64_t n) {
    const uint64_t first = collectiveSeq_;
    collectiveSeq_ += n;
    return first;
  }
  uint64_t nextCheckSeq() { return checkSeq_++; }  // LOOM_CHECK rounds (check.h)
  uint64_t nextP2pSeq(int peer, bool send);
  // Builds the unit's Execution (or completes it on the spot when trivial).
  Result<std::unique_ptr<PreparedUnit>> prepare(Unit unit);
  // Records the result: counters on success, the sticky error on a communication failure.
  void finish(const PreparedUnit& unit, const Status& status);
  std::mutex& engineMutex() { return engineMu_; }
  // Asynchronous path: queue streams of units for the worker, which drives them together;
  // work->complete() is called once they all ran.
  // Device operations' stages (base/cuda.h) are waited for before the units run and completed
  // after, whatever the outcome.
  void enqueue(std::vector<std::vector<Unit>> streams, std::shared_ptr<WorkState> work,
               std::vector<std::shared_ptr<cuda::StreamStage>> stages = {});
  // True when no asynchronous work is queued or running (then the caller may run inline).
  bool idle();
  // Runs one host operation to completion on the calling thread, under the engine mutex (the
  // inline path of an idle communicator, and the CUDA IPC path's barriers on the worker).
  Status runNow(const OpDesc& op);

 private:
  explicit Communicator(Init init) : init_(std::move(init)) {}
  Status prepareCollective(const OpDesc& op, PreparedUnit* out);
  // The algorithm (and plan; none for one that runs in the host window) for a collective, from
  // the memo of recent choices or the planner. Fills *args; args->hosts only on a memo miss.
  Status choose(const OpDesc& op, size_t elemBytes, bool preMul, algo::CollectiveArgs* args,
                const algo::Algorithm** algorithm, std::shared_ptr<const Plan>* plan);
  ExecParams execParams(const OpDesc& op, const algo::Algorithm& algorithm, bool preMul) const;
  // The host window's fast lane (runNow): a collective whose algorithm runs in the window is
  // prepared into windowUnit_, reusing its execution; nullptr when the general path must run it.
  PreparedUnit* prepareInWindow(const OpDesc& op);
  void logChoice(const algo::CollectiveArgs& args, const algo::Choice& choice);
  Status prepareP2p(PreparedUnit* out);
  std::byte* scratch(size_t bytes);
  LaneProvider laneProvider();
  void workerLoop();

  Init init_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<bootstrap::Bootstrap> bootstrap_;
  std::shared_ptr<const TopoView> topo_;
  std::atomic<bool> failed_{false};
  algo::AlgoOverrides overrides_;
  algo::CostModel costModel_;                   // LOOM_TUNING_FILE or the defaults
  algo::Topology planTopology_;                 // what the planner knows of the machine
  std::unordered_set<uint64_t> loggedChoices_;  // TUNING log: each choice once
  // Each rank's host, for hierarchical schedules (CollectiveArgs::hosts).
  algo::HostLayout hostLayout_;
  // Direct AllReduce between the processes of one host (direct.h); null when not usable.
  std::unique_ptr<HostWindow> window_;
  PreparedUnit windowUnit_;  // the fast lane's unit, reused call after call (prepareInWindow)
  std::unique_ptr<DeviceDirect> deviceDirect_;
  bool deviceDirectChecked_ = false;
  std::unique_ptr<DeviceIpc> deviceIpc_;  // used by the worker once created
  bool deviceIpcChecked_ = false;
  std::shared_ptr<cuda::StageBudget> stageBudget_;
  PlanCache plans_;
  // The last choice and plan per slot, for repeated calls (prepare.cpp). Used under the
  // engine mutex, like the rest of prepare().
  struct ChoiceMemo {
    algo::Collective collective = algo::Collective::kAllReduce;
    uint64_t count = 0;
    int root = 0;
    bool inPlace = false;
    int nchannels = 0;
    size_t elemBytes = 0;
    const algo::Algorithm* algorithm = nullptr;
    std::shared_ptr<const Plan> plan;
  };
  static constexpr size_t kMemoSlots = 16;
  std::array<ChoiceMemo, kMemoSlots> memo_{};
  std::unique_ptr<LaneTable> lanes_;
  std::unique_ptr<std::byte[]> scratch_;
  size_t scratchBytes_ = 0;

  uint64_t collectiveSeq_ = 0;
  uint64_t checkSeq_ = 0;
  std::vector<uint64_t> p2pSendSeq_, p2pRecvSeq_;
  uint64_t splitSeq_ = 0;

  mutable std::mutex errorMu_;
  Status asyncError_;
  mutable std::mutex countersMu_;
  Counters counters_;

  std::mutex engineMu_;
  // Worker (progress thread), started on first enqueue.
  struct Task {
    std::vector<std::vector<Unit>> streams;
    std::shared_ptr<WorkState> work;
    std::vector<std::shared_ptr<cuda::StreamStage>> stages;
    // A CUDA IPC call (then `streams` is empty and `stages` holds its zero-byte stage).
    bool ipc = false;
    OpDesc ipcOp;
    int ipcDevice = -1;
  };
  std::mutex queueMu_;
  std::condition_variable queueCv_;
  std::deque<Task> queue_;
  void push(Task task);  // queues it and starts the worker if needed
  int outstanding_ = 0;  // queued or running tasks
  bool stopWorker_ = false;
  std::thread worker_;
};

}  // namespace loom::runtime
