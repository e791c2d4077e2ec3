#include "runtime/device_direct.h"

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "base/cuda.h"
#include "base/dtype.h"

namespace loom::runtime {

using algo::Collective;

namespace {

// What one rank published for the current call.
struct Arrival {
  const void* input = nullptr;  // the send buffer, or the scratch copy of an in-place input
  void* recv = nullptr;
  void* inEvent = nullptr;
  void* doneEvent = nullptr;
  int device = -1;
  uint64_t signature = 0;
};

uint64_t signatureOf(const OpDesc& op) {
  uint64_t h = 1469598103934665603ull;
  for (uint64_t v :
       {static_cast<uint64_t>(op.collective), op.count, static_cast<uint64_t>(op.dtype),
        static_cast<uint64_t>(op.op.kind), static_cast<uint64_t>(op.root)})
    h = (h ^ v) * 1099511628211ull;
  return h;
}

}  // namespace

struct DeviceDirect::Shared {
  explicit Shared(int n) : arrivals(n) {}
  std::mutex mu;
  std::condition_variable cv;
  int count = 0;
  uint64_t generation = 0;
  std::vector<Arrival> arrivals;  // entry r is written by rank r only, between meetings
};

namespace {

std::atomic<uint64_t> gHandled{0};
std::mutex gRegistryMu;
std::map<std::pair<uint64_t, int>, std::weak_ptr<DeviceDirect::Shared>>& registry() {
  static auto* r = new std::map<std::pair<uint64_t, int>, std::weak_ptr<DeviceDirect::Shared>>();
  return *r;
}

}  // namespace

std::unique_ptr<DeviceDirect> DeviceDirect::create(uint64_t commHash, int rank, int nranks) {
  std::unique_ptr<DeviceDirect> d(new DeviceDirect());
  d->rank_ = rank;
  d->nranks_ = nranks;
  {
    std::lock_guard<std::mutex> lock(gRegistryMu);
    std::weak_ptr<Shared>& slot = registry()[{commHash, nranks}];
    d->shared_ = slot.lock();
    if (!d->shared_) {
      d->shared_ = std::make_shared<Shared>(nranks);
      slot = d->shared_;
    }
  }
  return d;
}

DeviceDirect::~DeviceDirect() {
  cuda::eventDestroy(inEvent_);
  cuda::eventDestroy(doneEvent_);
  cuda::deviceFree(scratch_);
}

bool DeviceDirect::covers(const OpDesc& op) {
  if (op.count == 0) return false;
  const bool reduces = op.collective == Collective::kAllReduce ||
                       op.collective == Collective::kReduceScatter ||
                       op.collective == Collective::kReduce;
  if (reduces)
    return op.op.kind == RedOpKind::kSum || op.op.kind == RedOpKind::kProd ||
           op.op.kind == RedOpKind::kMax || op.op.kind == RedOpKind::kMin;
  return op.collective == Collective::kAllGather || op.collective == Collective::kBroadcast;
}

Status DeviceDirect::meet(Deadline deadline, const std::atomic<bool>* abort) {
  Shared& s = *shared_;
  std::unique_lock<std::mutex> lock(s.mu);
  const uint64_t generation = s.generation;
  if (++s.count == nranks_) {
    s.count = 0;
    ++s.generation;
    s.cv.notify_all();
    return Status::ok();
  }
  while (s.generation == generation) {
    if (abort && abort->load(std::memory_order_acquire))
      return abortedError("communicator aborted while waiting for the other ranks' device call");
    if (deadline.expired())
      return timeoutError("rank " + std::to_string(rank_) +
                          ": the other ranks of this process did not make the same device call "
                          "before the timeout (LOOM_TIMEOUT_MS; LOOM_CUDA_DIRECT=0 stages "
                          "device calls instead)");
    s.cv.wait_for(lock, std::chrono::milliseconds(1));
  }
  return Status::ok();
}

Status DeviceDirect::scratchFor(size_t bytes, void* stream) {
  if (bytes <= scratchBytes_) return Status::ok();
  // Peers read the old scratch until their "done", which this stream already waits for, so a
  // stream-ordered free is safe; cudaFree would synchronise the device, and could wait for a
  // peer's stream that waits for this thread's next call.
  cuda::deviceFreeAsync(scratch_, stream);
  scratch_ = nullptr;
  scratchBytes_ = 0;
  LOOM_RETURN_IF_ERROR(cuda::deviceAllocAsync(bytes, &scratch_, stream));
  scratchBytes_ = bytes;
  return Status::ok();
}

Status DeviceDirect::run(const OpDesc& op, void* stream, int device, Deadline deadline,
                         const std::atomic<bool>* abort, bool* handled) {
  *handled = false;
  if (!covers(op)) return Status::ok();
  // Events, kernels and copies on the buffers' device (events must match their stream's).
  if (device >= 0) LOOM_RETURN_IF_ERROR(cuda::setDevice(device));
  if (!inEvent_) LOOM_RETURN_IF_ERROR(cuda::eventCreate(&inEvent_));
  if (!doneEvent_) LOOM_RETURN_IF_ERROR(cuda::eventCreate(&doneEvent_));
  const size_t es = dataTypeSize(op.dtype);
  const size_t block = op.count * es;
  const int n = nranks_, r = rank_;

  Arrival mine;
  mine.input = op.sendbuf;
  mine.recv = op.recvbuf;
  mine.inEvent = inEvent_;
  mine.doneEvent = doneEvent_;
  mine.device = device;
  mine.signature = signatureOf(op);
  // An in-place AllReduce overwrites the input its peers read: they read a copy.
  if (op.collective == Collective::kAllReduce && op.sendbuf == op.recvbuf) {
    LOOM_RETURN_IF_ERROR(scratchFor(block, stream));
    LOOM_RETURN_IF_ERROR(cuda::memcpyAsync(scratch_, op.sendbuf, block, stream));
    mine.input = scratch_;
  }
  LOOM_RETURN_IF_ERROR(cuda::eventRecord(inEvent_, stream));
  shared_->arrivals[r] = mine;
  LOOM_RETURN_IF_ERROR(meet(deadline, abort));

  const std::vector<Arrival> all = shared_->arrivals;
  Status status;
  bool sameDevice = true;
  for (int p = 0; p < n; ++p) {
    if (all[p].signature != mine.signature && status.isOk())
      status = invalidUsage("rank " + std::to_string(p) + " made a different device call (" +
                            std::string(algo::collectiveName(op.collective)) +
                            " expected, with the same count, datatype, op and root)");
    sameDevice = sameDevice && all[p].device == device;
  }
  const bool direct = status.isOk() && sameDevice;
  if (direct) {
    for (int p = 0; p < n && status.isOk(); ++p)
      if (p != r) status = cuda::streamWaitEvent(stream, all[p].inEvent);
    auto at = [](const void* base, size_t off) { return static_cast<const char*>(base) + off; };
    std::vector<const void*> srcs(n);
    switch (op.collective) {
      case Collective::kAllReduce:
        for (int p = 0; p < n; ++p)
          srcs[p] = all[p].input;
        if (status.isOk())
          status =
              cuda::reduceN(op.dtype, op.op.kind, op.recvbuf, srcs.data(), n, op.count, stream);
        break;
      case Collective::kReduceScatter:
        for (int p = 0; p < n; ++p)
          srcs[p] = at(all[p].input, r * block);
        if (status.isOk())
          status =
              cuda::reduceN(op.dtype, op.op.kind, op.recvbuf, srcs.data(), n, op.count, stream);
        break;
      case Collective::kReduce:
        for (int p = 0; p < n; ++p)
          srcs[p] = all[p].input;
        if (status.isOk() && r == op.root)
          status =
              cuda::reduceN(op.dtype, op.op.kind, op.recvbuf, srcs.data(), n, op.count, stream);
        break;
      case Collective::kAllGather:
        for (int p = 0; p < n && status.isOk(); ++p) {
          void* dst = static_cast<char*>(op.recvbuf) + p * block;
          if (dst != all[p].input)  // an in-place rank's own block is there already
            status = cuda::memcpyAsync(dst, all[p].input, block, stream);
        }
        break;
      case Collective::kBroadcast:
        if (status.isOk() && op.recvbuf != all[op.root].input)
          status = cuda::memcpyAsync(op.recvbuf, all[op.root].input, block, stream);
        break;
      default:
        break;
    }
    if (status.isOk()) status = cuda::eventRecord(doneEvent_, stream);
  }
  // Everyone read `all` and enqueued; the second meeting also tells each rank that every peer's
  // "done" is recorded. On an error the ranks still meet, so none is left waiting.
  Status met = meet(deadline, abort);
  if (!status.isOk()) return status;
  LOOM_RETURN_IF_ERROR(met);
  if (!direct) return Status::ok();  // ranks on different GPUs: staged, on every rank alike
  for (int p = 0; p < n; ++p)
    if (p != r) LOOM_RETURN_IF_ERROR(cuda::streamWaitEvent(stream, all[p].doneEvent));
  *handled = true;
  gHandled.fetch_add(1, std::memory_order_relaxed);
  return Status::ok();
}

uint64_t DeviceDirect::callsHandled() {
  return gHandled.load(std::memory_order_relaxed);
}

}  // namespace loom::runtime
