// Device calls between ranks that are threads of one process on one GPU, reading each other's
// device buffers directly (LOOM_CUDA_DIRECT=1; docs/GPU.md). The device counterpart of the
// host window (direct.h): no copy through host memory, no transport.
//
// A call: each rank records an "inputs ready" event on its stream (after copying an in-place
// AllReduce's input to a private device scratch) and publishes its buffers and events; the
// issuing threads meet (bounded by the timeout, woken by abort); each rank's stream waits for
// the others' "inputs ready", then reduces or copies straight from their buffers into its own
// (cuda::reduceN in rank order: every rank gets the same bits, those of the host kernels), and
// records "done"; the threads meet again and each stream waits for every "done", so no rank's
// later work overwrites a buffer a peer still reads. Nothing waits on the GPU: the threads
// only exchange pointers and enqueue.
//
// Covered: AllReduce, ReduceScatter, Reduce (Sum, Prod, Max, Min), AllGather, Broadcast,
// outside groups. Everything else, and ranks on different GPUs, take the staged path; the
// decision is the same on every rank. Ranks that issue different calls get InvalidUsage.
//
// Thread-safety: run() is called by the rank's issuing thread (one at a time per rank).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "base/status.h"
#include "base/time.h"
#include "runtime/op.h"

namespace loom::runtime {

class DeviceDirect {
 public:
  // Joins the ranks of communicator `commHash` (of `nranks`) in this process.
  static std::unique_ptr<DeviceDirect> create(uint64_t commHash, int rank, int nranks);
  ~DeviceDirect();
  DeviceDirect(const DeviceDirect&) = delete;
  DeviceDirect& operator=(const DeviceDirect&) = delete;

  // Whether op's kind can run here at all (the same answer on every rank for matching calls).
  static bool covers(const OpDesc& op);
  // Runs op on `stream` (op's buffers are device memory on `device`). *handled = false when the
  // call must take the staged path instead (then nothing was enqueued that matters).
  Status run(const OpDesc& op, void* stream, int device, Deadline deadline,
             const std::atomic<bool>* abort, bool* handled);

  // Calls this process ran here (tests: the path was taken).
  static uint64_t callsHandled();

  struct Shared;  // the rendezvous of the ranks (device_direct.cpp)

 private:
  DeviceDirect() = default;
  Status meet(Deadline deadline, const std::atomic<bool>* abort);
  Status scratchFor(size_t bytes, void* stream);

  std::shared_ptr<Shared> shared_;
  int rank_ = 0;
  int nranks_ = 1;
  void* inEvent_ = nullptr;
  void* doneEvent_ = nullptr;
  void* scratch_ = nullptr;  // device memory for an in-place AllReduce's input
  size_t scratchBytes_ = 0;
};

}  // namespace loom::runtime
