// The CUDA runtime as loom uses it (DESIGN.md section 4, docs/GPU.md).
//
// With nvcc present at build time (LOOM_HAVE_CUDA) the CUDA runtime is linked statically
// (cudart_static), and it loads the driver (libcuda.so.1) on first use. So a loom built with
// CUDA still runs host-memory collectives where no driver or GPU exists: available() is then
// false with the reason, and every pointer is host memory. Without CUDA in the build the same
// functions say so. No CUDA type appears here, so callers compile without CUDA headers.
//
// The staged path: a collective on device buffers runs on pinned host copies of them, ordered
// on the caller's stream. StreamStage enqueues on the stream, at the call:
//   copy device send -> pinned send;  record event "inputs ready";
//   wait until the host sets a flag (cuStreamWaitValue32, or a one-thread kernel polling the
//   flag where stream memory operations are unavailable);
//   copy pinned recv -> device recv;  host function: return the pinned memory to its pool.
// A communicator's worker thread then waits for "inputs ready" (bounded by the communicator's
// timeout, woken by abort), runs the collective on the pinned buffers, and sets the flag. The
// call returns at once; later work on the stream sees the result. Nothing blocks inside a host
// function, so ranks that are threads of one process cannot deadlock on CUDA's callback thread.
//
// Thread-safety: every function may be called from any thread; a StreamStage is used by one
// thread at a time.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "base/dtype.h"
#include "base/status.h"
#include "base/time.h"

namespace loom::cuda {

// Whether this build has the GPU path (nvcc was found).
bool built();
// Whether a driver and at least one device are usable; otherwise false and *why says why
// ("this build of loom has no CUDA", "no CUDA driver", "no CUDA device"). Cached.
bool available(std::string* why = nullptr);
int deviceCount();

enum class Memory { kHost, kDevice };  // kDevice: device or managed memory
struct PointerInfo {
  Memory memory = Memory::kHost;
  int device = -1;  // the device of device memory
};
// Host for host memory (pageable or pinned), for NULL, and always when !available().
PointerInfo pointerInfo(const void* p);
// Whether available() found a GPU in this process. Until then loom takes a call with a NULL
// stream for a host call without asking CUDA about its pointers, so host-only programs on a GPU
// machine never start CUDA (no driver load, no context) and pay nothing per call.
bool inUse();

// The pinned staging memory one communicator's calls hold until their streams are done with it
// (LOOM_CUDA_STAGE_BYTES). A call that would go over waits for earlier calls to finish - the
// backpressure NCCL applies when its work queue is full - so issuing many large calls without
// synchronising does not pin memory without bound. Calls in a group do not wait (the group's
// calls cannot finish before it ends), and a call may exceed the budget when nothing else holds
// any. Per communicator: a rank's earlier calls never need its later ones, so no rank waits for
// memory that only its own next call could free.
class StageBudget {
 public:
  explicit StageBudget(size_t cap) : cap_(cap) {}
  // Takes `bytes`; with `wait`, first waits while they would go over the budget: Timeout at the
  // deadline, Aborted when *abort becomes true.
  Status acquire(size_t bytes, bool wait, Deadline deadline, const std::atomic<bool>* abort);
  // Returns `bytes` (from a CUDA host function: no CUDA calls here).
  void release(size_t bytes);
  size_t held() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  size_t held_ = 0;
  const size_t cap_;
};

class StreamStage {
 public:
  struct Buffers {
    const void* send = nullptr;  // device memory
    size_t sendBytes = 0;
    void* recv = nullptr;  // device memory; may overlap send (in-place rules)
    size_t recvBytes = 0;
    int device = -1;  // the buffers' device (made current for the CUDA calls); -1: as is
    const void* scalar = nullptr;  // a PreMulSum scalar in device memory, copied with the send
    size_t scalarBytes = 0;        // at most 8
    // The communicator's budget (none: unbounded); whether the call may wait for it, until when.
    std::shared_ptr<StageBudget> budget;
    bool mayWait = false;
    Deadline waitUntil = Deadline::never();
    const std::atomic<bool>* abort = nullptr;
  };
  // Enqueues the first half of the stream side described above on `stream` (a cudaStream_t;
  // NULL is the legacy default stream): the copy out and the "inputs ready" event. On failure
  // nothing waits on the stream.
  static Result<std::unique_ptr<StreamStage>> create(void* stream, const Buffers& device);
  // Enqueues the second half: the wait for complete(), the copy back, the release. A group
  // calls it for all its operations after every create(), so that a stream holding several of
  // them copies all their inputs out before it waits for any (a Send and a Recv of one group
  // on one stream would otherwise wait for each other).
  Status finishOnStream();
  // Sets the flag if complete() was not called, so a stream never waits forever.
  ~StreamStage();
  StreamStage(const StreamStage&) = delete;
  StreamStage& operator=(const StreamStage&) = delete;

  // The pinned copies: the collective runs on these. Overlapping device buffers give
  // overlapping pinned buffers at the same offsets.
  const void* hostSend() const { return hostSend_; }
  void* hostRecv() const { return hostRecv_; }
  // The pinned copy of Buffers::scalar (valid once waitInputs() returned OK), or NULL.
  const void* hostScalar() const { return hostScalar_; }
  // Waits until the device send buffer has been copied (the stream reached this call).
  // Timeout at the deadline, Aborted when *abort becomes true.
  Status waitInputs(Deadline deadline, const std::atomic<bool>* abort);
  // The host part is done (successfully or not): the stream copies the result back and goes
  // on. Idempotent.
  void complete();

  struct Control;  // shared with the stream's host function (cuda.cpp)
  struct Fake;     // the emulation's state (testing::useFakeDevice)

 private:
  StreamStage() = default;
  static Result<std::unique_ptr<StreamStage>> createReal(void* stream, const Buffers& device);
  static Result<std::unique_ptr<StreamStage>> createFake(void* stream, const Buffers& device);
  void destroyReal();
  Status finishReal();
  Status inputsReadyReal(bool* ready);
  void completeReal();
  std::shared_ptr<Fake> fake_;
  Control* control_ = nullptr;  // owned by the host function once enqueued
  void* event_ = nullptr;
  void* stream_ = nullptr;
  void* recvDevice_ = nullptr;
  size_t recvBytes_ = 0;
  int device_ = -1;
  const void* hostSend_ = nullptr;
  void* hostRecv_ = nullptr;
  const void* hostScalar_ = nullptr;
  volatile uint32_t* flag_ = nullptr;
  bool completed_ = false;
};

// Polls `ready` until it says true: yields at first, then sleeps 20 us between polls (device work
// on small buffers finishes within microseconds). Aborted (`aborted`) when *abort becomes true,
// Timeout (`late`) at the deadline; an error from `ready` is returned as is.
Status pollUntil(const std::function<Status(bool*)>& ready, Deadline deadline,
                 const std::atomic<bool>* abort, const std::string& aborted,
                 const std::string& late);

// dst[i] = srcs[0][i] (op) … (op) srcs[nsrcs-1][i] on the device, ordered on `stream`, with the
// rounding of base/reduce.h (half types accumulate in float and round once). All pointers are
// device memory. Sum, Prod, Max, Min (Avg and PreMulSum reduce with Sum, as on the host).
Status reduceN(DataType type, RedOpKind op, void* dst, const void* const* srcs, int nsrcs,
               size_t count, void* stream);
// Copies between any two memories, ordered on `stream`.
Status memcpyAsync(void* dst, const void* src, size_t bytes, void* stream);
// Events (cudaEvent_t, without timing): record on a stream; make a stream wait for the work
// before the event's most recent record (as of this call), on any stream of the process.
Status eventCreate(void** event);
void eventDestroy(void* event);
Status eventRecord(void* event, void* stream);
Status streamWaitEvent(void* stream, void* event);
Status streamSynchronize(void* stream);
// Whether the work before the event's most recent record is done (cudaEventQuery).
Status eventQuery(void* event, bool* done);

// CUDA IPC: device memory that another process of this host maps (runtime/device_ipc.h).
// Real: cudaMalloc + cudaIpcGetMemHandle; cudaIpcOpenMemHandle with lazy peer access, so a
// process on another GPU of the host reads it over NVLink or PCIe where peer access exists.
// A process cannot open its own handles (CUDA refuses): it uses the pointer. Emulated: a memfd
// the other process maps through /proc/<pid>/fd.
struct IpcHandle {
  unsigned char bytes[64] = {};  // cudaIpcMemHandle_t
};
Status ipcAlloc(size_t bytes, void** ptr, IpcHandle* handle);  // on the current device
void ipcFree(void* ptr);  // synchronises the device, as cudaFree does
Status ipcOpen(const IpcHandle& handle, void** ptr);
void ipcClose(void* ptr);

// For tests and tools: device memory and streams on the current device.
Status deviceAlloc(size_t bytes, void** ptr);
void deviceFree(void* ptr);  // synchronises the device, as cudaFree does
// Stream-ordered allocation (cudaMallocAsync/cudaFreeAsync): no device synchronisation.
Status deviceAllocAsync(size_t bytes, void** ptr, void* stream);
void deviceFreeAsync(void* ptr, void* stream);
Status streamCreate(void** stream);
void streamDestroy(void* stream);
Status setDevice(int device);

// Pinned staging memory now cached by the pool (tests: it returns to the pool after use).
size_t pooledPinnedBytes();

namespace testing {
// Replaces CUDA, for this process, by an emulation on the host so that everything above this
// file (argument checks, the staged path through groups and workers, streams' ordering) is
// tested where no GPU exists: "device memory" comes from deviceAlloc (plain memory that
// pointerInfo reports as device memory), each stream is a thread running its operations in
// order, and StreamStage does on it what it does on a real stream. Call before any other
// function here; it cannot be undone.
void useFakeDevice();
bool fakeDevice();
// From now on ipcAlloc fails on the emulation, as where CUDA refuses IPC (tests of the fallback).
void refuseIpc(bool refuse);
}  // namespace testing

}  // namespace loom::cuda
