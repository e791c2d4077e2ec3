// Device calls between ranks on one host through CUDA IPC (LOOM_CUDA_IPC=1; docs/GPU.md): the
// cuda_ipc path. Ranks may be processes (one GPU shared, or several GPUs with peer access) or
// threads; no byte of the message goes through host memory or a transport.
//
// Each rank owns a window: twice LOOM_CUDA_IPC_BYTES of device memory from cuda::ipcAlloc (an
// input area and the result area of two-shot AllReduce), made by the issuing thread at the
// first covered call, before that call is on its stream. At the
// first call the ranks exchange the windows' IPC handles over the communicator's host path and
// map each other's (a rank of the same process uses the pointer); whether every rank mapped
// every window is agreed on, so all ranks decide alike. A call runs on the communicator's
// worker, once the caller's stream reached it (a zero-byte StreamStage: the stream waits for
// the worker, then goes on), chunk by chunk:
//   copy this rank's part of the chunk into its window (on the worker's own stream), wait;
//   host barrier;
//   read the peers' windows: cuda::reduceN in rank order (every rank gets the bits of the host
//   kernels) or copies, into the caller's receive buffer; wait;
//   host barrier (no window is refilled while a peer still reads it).
// AllReduce of 256 KiB or more on 3 or more ranks is two-shot: between the two, each rank
// reduces its 1/n slice of the chunk into its result area, waits, and after a third barrier
// every rank copies every slice - n times less reading than one-shot, for one more barrier.
// The barriers are host AllReduce(min) of "my device work succeeded", so a failure on one rank
// fails the call on every rank instead of leaving them waiting. Nothing waits on the GPU: no
// kernel spins on another process's kernel, which matters when processes time-slice one GPU
// without MPS. If the windows cannot be mapped (no peer access between two GPUs, IPC refused),
// every rank runs its calls through host memory on the worker instead, and says so once.
//
// Covered: AllReduce, ReduceScatter, Reduce (Sum, Prod, Max, Min), AllGather, Broadcast,
// outside groups (as DeviceDirect). A call's host barriers take sequence numbers reserved when
// it is issued (seqsFor), so every rank numbers its later calls alike.
//
// Thread-safety: seqsFor() on the issuing thread, run() on the worker, one call at a time each.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "base/cuda.h"
#include "base/status.h"
#include "base/time.h"
#include "runtime/op.h"

namespace loom::runtime {

class DeviceIpc {
 public:
  // Runs a host operation (its seq set) of the communicator to completion.
  using HostRun = std::function<Status(const OpDesc& op)>;

  DeviceIpc(int rank, int nranks, size_t windowBytes);
  ~DeviceIpc();
  DeviceIpc(const DeviceIpc&) = delete;
  DeviceIpc& operator=(const DeviceIpc&) = delete;

  static bool covers(const OpDesc& op);
  // On the issuing thread: how many collective sequence numbers the call takes (op.seq is the
  // first). The same on every rank for matching calls.
  // The first call also makes this rank's window (on `device`, the call's buffers' GPU).
  uint64_t seqsFor(const OpDesc& op, int device);
  // On the worker, once the caller's stream reached the call.
  Status run(const OpDesc& op, int device, Deadline deadline, const std::atomic<bool>* abort,
             const HostRun& host);

  // Calls this process ran through the windows, and through host memory because they could not
  // be mapped (tests: which path was taken).
  static uint64_t callsHandled();
  static uint64_t callsStaged();
  static uint64_t callsTwoShot();  // of callsHandled()

 private:
  size_t chunkCount(const OpDesc& op) const;  // elements per chunk
  // AllReduce of at least kTwoShotBytes on more than 2 ranks: each rank reduces 1/n of each
  // chunk (reading 1/n of every window instead of all of it) and all copy the reduced slices.
  bool twoShot(const OpDesc& op) const;
  static constexpr size_t kTwoShotBytes = 256 << 10;
  Status setup(uint64_t seq, const HostRun& host);
  Status barrier(Status mine, uint64_t seq, const HostRun& host);
  Status waitStream(Deadline deadline, const std::atomic<bool>* abort);
  Status runWindows(const OpDesc& op, int device, uint64_t seq, Deadline deadline,
                    const std::atomic<bool>* abort, const HostRun& host);
  Status runStaged(const OpDesc& op, uint64_t seq, Deadline deadline,
                   const std::atomic<bool>* abort, const HostRun& host);

  const int rank_;
  const int nranks_;
  const size_t windowBytes_;
  bool setupIssued_ = false;  // issuing thread
  bool setupDone_ = false;    // worker, from here on
  bool usable_ = false;
  int device_ = -1;
  Status local_;  // making the window, stream and event (issuing thread)
  cuda::IpcHandle handle_;
  void* stream_ = nullptr;  // the worker's stream
  void* event_ = nullptr;
  void* window_ = nullptr;
  std::vector<void*> peers_;  // every rank's window as mapped here
  std::vector<bool> opened_;  // mapped with ipcOpen (closed at the end)
};

}  // namespace loom::runtime
