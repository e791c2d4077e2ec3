#include "runtime/device_ipc.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "base/dtype.h"
#include "base/log.h"
#include "base/tsan.h"
#include "runtime/device_direct.h"

namespace loom::runtime {

using algo::Collective;

namespace {

std::atomic<uint64_t> gHandled{0};
std::atomic<uint64_t> gStaged{0};
std::atomic<uint64_t> gTwoShot{0};
// The barriers order the windows' writes and reads (base/tsan.h: between threads over shm,
// TSan cannot see it).
char gBarrierKey;

// What each rank tells the others at setup.
struct WindowInfo {
  cuda::IpcHandle handle;
  int64_t pid = 0;
  int64_t device = -1;
  uint64_t pointer = 0;  // for ranks of the same process
  int64_t ok = 0;        // the window exists
};

}  // namespace

DeviceIpc::DeviceIpc(int rank, int nranks, size_t windowBytes)
    : rank_(rank), nranks_(nranks), windowBytes_(std::max<size_t>(windowBytes, 4096)) {}

DeviceIpc::~DeviceIpc() {
  if (stream_) cuda::streamSynchronize(stream_).ignoreError();
  for (size_t p = 0; p < peers_.size(); ++p)
    if (opened_[p]) cuda::ipcClose(peers_[p]);
  cuda::ipcFree(window_);
  cuda::eventDestroy(event_);
  cuda::streamDestroy(stream_);
}

bool DeviceIpc::covers(const OpDesc& op) {
  // The calls the direct path covers (the same kernels and copies), without a device scalar.
  return !op.op.deviceScalar && DeviceDirect::covers(op);
}

size_t DeviceIpc::chunkCount(const OpDesc& op) const {
  // A ReduceScatter chunk holds a piece of every rank's block; the others one piece.
  const size_t per =
      dataTypeSize(op.dtype) * (op.collective == Collective::kReduceScatter ? nranks_ : 1);
  return std::max<size_t>(windowBytes_ / per, 1);
}

bool DeviceIpc::twoShot(const OpDesc& op) const {
  return op.collective == Collective::kAllReduce && nranks_ > 2 &&
         op.count * dataTypeSize(op.dtype) >= kTwoShotBytes;
}

uint64_t DeviceIpc::seqsFor(const OpDesc& op, int device) {
  const size_t c = chunkCount(op);
  uint64_t seqs = (twoShot(op) ? 3 : 2) * ((op.count + c - 1) / c);
  if (!setupIssued_) {
    setupIssued_ = true;
    // The window, stream and event, on the issuing thread before this call's stage is on the
    // caller's stream: an allocation may wait for earlier device work, and on the worker that
    // work could include the stream's wait for this very call. The outcome is agreed at setup.
    device_ = device;
    if (device >= 0) local_ = cuda::setDevice(device);
    if (local_.isOk()) local_ = cuda::streamCreate(&stream_);
    if (local_.isOk()) local_ = cuda::eventCreate(&event_);
    // The input area, then the result area of two-shot AllReduce.
    if (local_.isOk()) local_ = cuda::ipcAlloc(2 * windowBytes_, &window_, &handle_);
    seqs += 2;  // the handle exchange and the agreement
  }
  return seqs;
}

Status DeviceIpc::barrier(Status mine, uint64_t seq, const HostRun& host) {
  int32_t ok = mine.isOk() ? 1 : 0, all = 0;
  OpDesc b;
  b.collective = Collective::kAllReduce;
  b.sendbuf = &ok;
  b.recvbuf = &all;
  b.count = 1;
  b.dtype = DataType::kInt32;
  b.op.kind = RedOpKind::kMin;
  b.seq = seq;
  b.internal = true;
  tsanRelease(&gBarrierKey);
  LOOM_RETURN_IF_ERROR(host(b));
  tsanAcquire(&gBarrierKey);
  if (!mine.isOk()) return mine;
  if (all == 0)
    return remoteError("another rank's device work for this call failed (CUDA IPC; see its log)");
  return Status::ok();
}

Status DeviceIpc::waitStream(Deadline deadline, const std::atomic<bool>* abort) {
  LOOM_RETURN_IF_ERROR(cuda::eventRecord(event_, stream_));
  return cuda::pollUntil([this](bool* done) { return cuda::eventQuery(event_, done); }, deadline,
                         abort, "communicator aborted while its device work ran (CUDA IPC)",
                         "the device work of a CUDA IPC call did not finish before the timeout "
                         "(LOOM_TIMEOUT_MS)");
}

Status DeviceIpc::setup(uint64_t seq, const HostRun& host) {
  const int device = device_;
  WindowInfo mine;
  mine.handle = handle_;
  mine.pid = getpid();
  mine.device = device;
  Status local = local_;
  mine.ok = local.isOk() ? 1 : 0;
  mine.pointer = reinterpret_cast<uint64_t>(window_);

  std::vector<WindowInfo> all(nranks_);
  OpDesc exchange;
  exchange.collective = Collective::kAllGather;
  exchange.sendbuf = &mine;
  exchange.recvbuf = all.data();
  exchange.count = sizeof(WindowInfo);
  exchange.dtype = DataType::kUint8;
  exchange.seq = seq;
  exchange.internal = true;
  LOOM_RETURN_IF_ERROR(host(exchange));

  peers_.assign(nranks_, nullptr);
  opened_.assign(nranks_, false);
  for (int p = 0; p < nranks_ && local.isOk(); ++p) {
    if (!all[p].ok) {
      local = remoteError("rank " + std::to_string(p) + " has no IPC window");
    } else if (p == rank_) {
      peers_[p] = window_;
    } else if (all[p].pid == mine.pid) {
      // CUDA cannot open a handle in the process that made it; the pointer is valid here, and
      // on another GPU of this process would need peer access, which this path does not enable.
      if (all[p].device != device)
        local = invalidUsage("rank " + std::to_string(p) +
                             " is a thread of this process on another GPU");
      peers_[p] = reinterpret_cast<void*>(all[p].pointer);
    } else {
      Status s = cuda::ipcOpen(all[p].handle, &peers_[p]);
      if (s.isOk())
        opened_[p] = true;
      else
        local = Status(s).withContext("mapping rank " + std::to_string(p) + "'s window");
    }
  }
  Status agreed = barrier(local, seq + 1, host);
  usable_ = agreed.isOk();
  if (usable_) {
    LOOM_LOG(kInfo, kColl) << "CUDA IPC on: " << nranks_ << " ranks, windows of " << windowBytes_
                           << " bytes";
    return Status::ok();
  }
  if (agreed.code() == Code::kTimeout || agreed.code() == Code::kAborted) return agreed;
  LOOM_LOG(kWarn, kColl) << "CUDA IPC off, device calls go through host memory: "
                         << agreed.toString();
  for (int p = 0; p < nranks_; ++p)
    if (opened_[p]) cuda::ipcClose(peers_[p]);
  peers_.clear();
  opened_.clear();
  cuda::ipcFree(window_);
  window_ = nullptr;
  return Status::ok();
}

Status DeviceIpc::run(const OpDesc& op, int device, Deadline deadline,
                      const std::atomic<bool>* abort, const HostRun& host) {
  uint64_t seq = op.seq;
  if (!setupDone_) {
    setupDone_ = true;
    LOOM_RETURN_IF_ERROR(setup(seq, host));
    seq += 2;
  }
  if (device >= 0) LOOM_RETURN_IF_ERROR(cuda::setDevice(device));
  Status s = usable_ ? runWindows(op, device, seq, deadline, abort, host)
                     : runStaged(op, seq, deadline, abort, host);
  if (s.isOk()) (usable_ ? gHandled : gStaged).fetch_add(1, std::memory_order_relaxed);
  if (s.isOk() && usable_ && twoShot(op)) gTwoShot.fetch_add(1, std::memory_order_relaxed);
  return s;
}

Status DeviceIpc::runWindows(const OpDesc& op, int device, uint64_t seq, Deadline deadline,
                             const std::atomic<bool>* abort, const HostRun& host) {
  const size_t es = dataTypeSize(op.dtype);
  const size_t block = op.count * es;
  const size_t chunk = chunkCount(op);
  const bool two = twoShot(op);
  const int n = nranks_, r = rank_;
  const auto* send = static_cast<const char*>(op.sendbuf);
  auto* recv = static_cast<char*>(op.recvbuf);
  auto* win = static_cast<char*>(window_);
  std::vector<const void*> srcs(n);
  for (uint64_t first = 0; first < op.count; first += chunk) {
    const size_t len = std::min<uint64_t>(chunk, op.count - first);
    const size_t bytes = len * es, off = first * es;
    // This rank's part of the chunk into its window.
    Status s;
    if (device != device_)
      s = invalidUsage("CUDA IPC: a communicator's device calls must stay on one GPU");
    switch (op.collective) {
      case Collective::kReduceScatter:
        for (int q = 0; q < n && s.isOk(); ++q)
          s = cuda::memcpyAsync(win + q * bytes, send + q * block + off, bytes, stream_);
        break;
      case Collective::kBroadcast:
        if (r == op.root && s.isOk()) s = cuda::memcpyAsync(win, send + off, bytes, stream_);
        break;
      default:
        if (s.isOk()) s = cuda::memcpyAsync(win, send + off, bytes, stream_);
        break;
    }
    if (s.isOk()) s = waitStream(deadline, abort);
    LOOM_RETURN_IF_ERROR(barrier(s, seq++, host));
    // Read the peers' windows.
    const auto at = [&](int p, size_t o) { return static_cast<const char*>(peers_[p]) + o; };
    // Two-shot: rank p reduces slice p of the chunk into its result area, then every rank
    // copies every slice.
    const auto slice = [&](int p) { return len * p / n; };  // first element of slice p
    switch (op.collective) {
      case Collective::kAllReduce:
        if (!two) {
          for (int p = 0; p < n; ++p)
            srcs[p] = at(p, 0);
          s = cuda::reduceN(op.dtype, op.op.kind, recv + off, srcs.data(), n, len, stream_);
          break;
        }
        for (int p = 0; p < n; ++p)
          srcs[p] = at(p, slice(r) * es);
        if (slice(r + 1) > slice(r))
          s = cuda::reduceN(op.dtype, op.op.kind, win + windowBytes_ + slice(r) * es, srcs.data(),
                            n, slice(r + 1) - slice(r), stream_);
        if (s.isOk()) s = waitStream(deadline, abort);
        LOOM_RETURN_IF_ERROR(barrier(s, seq++, host));
        for (int p = 0; p < n && s.isOk(); ++p)
          if (slice(p + 1) > slice(p))
            s = cuda::memcpyAsync(recv + off + slice(p) * es, at(p, windowBytes_ + slice(p) * es),
                                  (slice(p + 1) - slice(p)) * es, stream_);
        break;
      case Collective::kReduce:
        if (r != op.root) break;
        for (int p = 0; p < n; ++p)
          srcs[p] = at(p, 0);
        s = cuda::reduceN(op.dtype, op.op.kind, recv + off, srcs.data(), n, len, stream_);
        break;
      case Collective::kReduceScatter:
        for (int p = 0; p < n; ++p)
          srcs[p] = at(p, r * bytes);
        s = cuda::reduceN(op.dtype, op.op.kind, recv + off, srcs.data(), n, len, stream_);
        break;
      case Collective::kAllGather:
        for (int p = 0; p < n && s.isOk(); ++p)
          s = cuda::memcpyAsync(recv + p * block + off, at(p, 0), bytes, stream_);
        break;
      case Collective::kBroadcast:
        s = cuda::memcpyAsync(recv + off, at(op.root, 0), bytes, stream_);
        break;
      default:
        s = internalError("CUDA IPC: an uncovered collective");
        break;
    }
    if (s.isOk()) s = waitStream(deadline, abort);
    LOOM_RETURN_IF_ERROR(barrier(s, seq++, host));
  }
  return Status::ok();
}

Status DeviceIpc::runStaged(const OpDesc& op, uint64_t seq, Deadline deadline,
                            const std::atomic<bool>* abort, const HostRun& host) {
  // The windows could not be mapped on some rank: the call runs on host copies (every rank
  // does the same, as agreed at setup).
  if (!stream_) LOOM_RETURN_IF_ERROR(cuda::streamCreate(&stream_));
  if (!event_) LOOM_RETURN_IF_ERROR(cuda::eventCreate(&event_));
  size_t sendBytes = 0, recvBytes = 0;
  bufferBytes(op, rank_, nranks_, &sendBytes, &recvBytes);  // checked when it was issued
  const size_t block = op.count * dataTypeSize(op.dtype);
  std::vector<std::byte> hs(std::max(sendBytes, block)), hr(std::max(recvBytes, block));
  if (sendBytes) LOOM_RETURN_IF_ERROR(cuda::memcpyAsync(hs.data(), op.sendbuf, sendBytes, stream_));
  LOOM_RETURN_IF_ERROR(waitStream(deadline, abort));
  OpDesc h = op;
  h.sendbuf = hs.data();
  h.recvbuf = hr.data();
  h.seq = seq;
  h.internal = true;  // counted when issued
  LOOM_RETURN_IF_ERROR(host(h));
  if (recvBytes) LOOM_RETURN_IF_ERROR(cuda::memcpyAsync(op.recvbuf, hr.data(), recvBytes, stream_));
  return waitStream(deadline, abort);
}

uint64_t DeviceIpc::callsHandled() {
  return gHandled.load(std::memory_order_relaxed);
}

uint64_t DeviceIpc::callsTwoShot() {
  return gTwoShot.load(std::memory_order_relaxed);
}

uint64_t DeviceIpc::callsStaged() {
  return gStaged.load(std::memory_order_relaxed);
}

}  // namespace loom::runtime
