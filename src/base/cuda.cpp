#include "base/cuda.h"

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/config.h"
#include "base/cuda_fake.h"
#include "base/log.h"
#include "base/reduce.h"
#include "loom_features.h"

#if LOOM_HAVE_CUDA
#include <cuda.h>
#include <cuda_runtime_api.h>
#endif

namespace loom::cuda {

bool built() {
  return LOOM_HAVE_CUDA != 0;
}

namespace {
std::atomic<bool> gInUse{false};  // inUse(): set when a probe found a GPU
}  // namespace

bool inUse() {
  return gInUse.load(std::memory_order_relaxed);
}

Status StageBudget::acquire(size_t bytes, bool wait, Deadline deadline,
                            const std::atomic<bool>* abort) {
  std::unique_lock<std::mutex> lock(mu_);
  while (wait && held_ > 0 && held_ + bytes > cap_) {
    if (abort && abort->load(std::memory_order_acquire))
      return Status(Code::kAborted, "communicator aborted while waiting for staging memory");
    if (deadline.expired())
      return Status(Code::kTimeout, "earlier device calls still hold " + std::to_string(held_) +
                                        " bytes of staging memory (LOOM_CUDA_STAGE_BYTES " +
                                        std::to_string(cap_) +
                                        ") after the communicator's timeout");
    cv_.wait_for(lock, std::chrono::milliseconds(1));
  }
  held_ += bytes;
  return Status::ok();
}

void StageBudget::release(size_t bytes) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    held_ -= std::min(bytes, held_);
  }
  cv_.notify_all();
}

size_t StageBudget::held() const {
  std::lock_guard<std::mutex> lock(mu_);
  return held_;
}

namespace {
// Where a stage's pinned copies go: overlapping (in-place) buffers share one block at the
// buffers' own relative offsets; otherwise each side has its block (none for 0 bytes).
struct PinnedLayout {
  bool shared = false;
  size_t sendBlock = 0, recvBlock = 0;    // bytes; shared: recvBlock is the one block
  size_t sendOffset = 0, recvOffset = 0;  // within the shared block
};

PinnedLayout layoutOf(const StreamStage::Buffers& d) {
  PinnedLayout l;
  const auto s = reinterpret_cast<uintptr_t>(d.send), r = reinterpret_cast<uintptr_t>(d.recv);
  l.shared = d.sendBytes > 0 && d.recvBytes > 0 && s < r + d.recvBytes && r < s + d.sendBytes;
  if (!l.shared) {
    l.sendBlock = d.sendBytes;
    l.recvBlock = d.recvBytes;
    return l;
  }
  const uintptr_t lo = std::min(s, r), hi = std::max(s + d.sendBytes, r + d.recvBytes);
  l.recvBlock = hi - lo;
  l.sendOffset = s - lo;
  l.recvOffset = r - lo;
  return l;
}

// The pinned pointers of a layout, given its blocks.
void placeCopies(const PinnedLayout& l, void* sendBlock, void* recvBlock, const void** hostSend,
                 void** hostRecv) {
  auto* shared = static_cast<char*>(recvBlock);
  *hostSend = l.shared ? shared + l.sendOffset : sendBlock;
  *hostRecv = l.shared ? shared + l.recvOffset : recvBlock;
}
}  // namespace

#if !LOOM_HAVE_CUDA

namespace {
Status noCuda(const char* what) {
  return Status(Code::kCudaError, std::string(what) +
                                      ": this build of loom has no CUDA (nvcc was not found when "
                                      "it was configured; see LOOM_CUDA)");
}
}  // namespace

bool realAvailable(std::string* why) {
  if (why) *why = "this build of loom has no CUDA";
  return false;
}
int realDeviceCount() {
  return 0;
}
PointerInfo realPointerInfo(const void*) {
  return {};
}
Result<std::unique_ptr<StreamStage>> StreamStage::createReal(void*, const Buffers&) {
  return noCuda("device buffers");
}
void StreamStage::destroyReal() {}
Status StreamStage::finishReal() {
  return noCuda("finishOnStream");
}
Status StreamStage::inputsReadyReal(bool*) {
  return noCuda("waitInputs");
}
void StreamStage::completeReal() {}
Status realReduceN(DataType, RedOpKind, void*, const void* const*, int, size_t, void*) {
  return noCuda("reduceN");
}
Status realMemcpyAsync(void*, const void*, size_t, void*) {
  return noCuda("memcpyAsync");
}
Status realStreamSynchronize(void*) {
  return noCuda("streamSynchronize");
}
Status realEventQuery(void*, bool*) {
  return noCuda("eventQuery");
}
Status realEventCreate(void**) {
  return noCuda("eventCreate");
}
void realEventDestroy(void*) {}
Status realEventRecord(void*, void*) {
  return noCuda("eventRecord");
}
Status realStreamWaitEvent(void*, void*) {
  return noCuda("streamWaitEvent");
}
Status realDeviceAlloc(size_t, void**) {
  return noCuda("deviceAlloc");
}
void realDeviceFree(void*) {}
Status realDeviceAllocAsync(size_t, void**, void*) {
  return noCuda("deviceAllocAsync");
}
void realDeviceFreeAsync(void*, void*) {}
Status realStreamCreate(void**) {
  return noCuda("streamCreate");
}
void realStreamDestroy(void*) {}
Status realSetDevice(int) {
  return noCuda("setDevice");
}
size_t pooledPinnedBytes() {
  return 0;
}

#else  // LOOM_HAVE_CUDA

namespace detail {
cudaError_t launchReduceN(int type, int op, void* dst, const void* const* srcs, int nsrcs,
                          size_t count, cudaStream_t stream);
cudaError_t launchWaitFlag(const volatile uint32_t* flag, cudaStream_t stream);
}  // namespace detail

namespace {

Status cudaStatus(cudaError_t err, const std::string& what) {
  return Status(Code::kCudaError,
                what + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

#define LOOM_CUDA_TRY(call, what)         \
  do {                                    \
    cudaError_t loom_err_ = (call);       \
    if (loom_err_ != cudaSuccess) {       \
      (void)cudaGetLastError();           \
      return cudaStatus(loom_err_, what); \
    }                                     \
  } while (0)

struct Probe {
  bool ok = false;
  int devices = 0;
  std::string why;
};

const Probe& probe() {
  static const Probe p = [] {
    Probe r;
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      r.why = err == cudaErrorInsufficientDriver || err == cudaErrorNoDevice
                  ? std::string(err == cudaErrorNoDevice ? "no CUDA device"
                                                         : "no CUDA driver (libcuda.so.1)")
                  : std::string("CUDA unavailable: ") + cudaGetErrorString(err);
      return r;
    }
    if (n == 0) {
      r.why = "no CUDA device";
      return r;
    }
    r.ok = true;
    r.devices = n;
    gInUse = true;
    return r;
  }();
  return p;
}

// ---- pinned memory: size classes of powers of two from 64 KiB, cached for reuse ----
constexpr size_t kMinBlock = 64 * 1024;

size_t classOf(size_t bytes) {
  size_t c = kMinBlock;
  while (c < bytes)
    c <<= 1;
  return c;
}

struct PinnedPool {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free;  // by size class
  size_t pooled = 0;
  // Flags: 4-byte slots in pinned, mapped memory, 64 bytes apart.
  std::vector<volatile uint32_t*> freeFlags;
};

PinnedPool& pool() {
  static PinnedPool* p = new PinnedPool();  // never destroyed: host functions may run late
  return *p;
}

Result<void*> takePinned(size_t bytes) {
  const size_t c = classOf(bytes);
  {
    PinnedPool& p = pool();
    std::lock_guard<std::mutex> lock(p.mu);
    auto it = p.free.find(c);
    if (it != p.free.end() && !it->second.empty()) {
      void* b = it->second.back();
      it->second.pop_back();
      p.pooled -= c;
      return b;
    }
  }
  void* b = nullptr;
  LOOM_CUDA_TRY(cudaHostAlloc(&b, c, cudaHostAllocPortable | cudaHostAllocMapped),
                "cudaHostAlloc of " + std::to_string(c) + " bytes of pinned staging memory");
  return b;
}

// Called from a CUDA host function: no CUDA calls.
void givePinned(void* b, size_t bytes) {
  if (!b) return;
  PinnedPool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  p.free[classOf(bytes)].push_back(b);
  p.pooled += classOf(bytes);
}

Result<volatile uint32_t*> takeFlag() {
  PinnedPool& p = pool();
  {
    std::lock_guard<std::mutex> lock(p.mu);
    if (!p.freeFlags.empty()) {
      volatile uint32_t* f = p.freeFlags.back();
      p.freeFlags.pop_back();
      *f = 0;
      return f;
    }
  }
  constexpr size_t kSlab = 64 * 1024, kSlot = 64;
  void* slab = nullptr;
  LOOM_CUDA_TRY(cudaHostAlloc(&slab, kSlab, cudaHostAllocPortable | cudaHostAllocMapped),
                "cudaHostAlloc of the stream flags");
  auto* base = static_cast<char*>(slab);
  std::lock_guard<std::mutex> lock(p.mu);
  for (size_t off = kSlot; off < kSlab; off += kSlot) {
    auto* f = reinterpret_cast<volatile uint32_t*>(base + off);
    *f = 0;
    p.freeFlags.push_back(f);
  }
  auto* first = reinterpret_cast<volatile uint32_t*>(base);
  *first = 0;
  return first;
}

void giveFlag(volatile uint32_t* f) {
  PinnedPool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  p.freeFlags.push_back(f);
}

// cuStreamWaitValue32 through the runtime's driver entry point (no -lcuda); null when the
// driver lacks it. LOOM_CUDA_WAIT=kernel forces the polling kernel.
using WaitValueFn = CUresult (*)(CUstream, CUdeviceptr, cuuint32_t, unsigned int);
std::atomic<int> gWaitMode{-1};  // -1 unknown, 0 kernel, 1 memop
WaitValueFn gWaitValue = nullptr;

WaitValueFn waitValueFn() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (Config::processDefaults().cudaWait == "kernel") {
      gWaitMode = 0;
      return;
    }
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult q{};
    if (cudaGetDriverEntryPointByVersion("cuStreamWaitValue32", &fn, 12000, cudaEnableDefault,
                                         &q) == cudaSuccess &&
        q == cudaDriverEntryPointSuccess && fn) {
      gWaitValue = reinterpret_cast<WaitValueFn>(fn);
      gWaitMode = 1;
    } else {
      (void)cudaGetLastError();
      gWaitMode = 0;
    }
  });
  return gWaitMode.load() == 1 ? gWaitValue : nullptr;
}

}  // namespace

struct StreamStage::Control {
  void* sendBlock = nullptr;
  size_t sendBlockBytes = 0;
  void* recvBlock = nullptr;
  size_t recvBlockBytes = 0;
  volatile uint32_t* flag = nullptr;
  std::shared_ptr<StageBudget> budget;
  size_t budgetBytes = 0;
};

namespace {
// The stream's last step: everything the stage borrowed goes back to the pools.
void CUDART_CB releaseControl(void* data) {
  auto* c = static_cast<StreamStage::Control*>(data);
  givePinned(c->sendBlock, c->sendBlockBytes);
  givePinned(c->recvBlock, c->recvBlockBytes);
  giveFlag(c->flag);
  if (c->budget) c->budget->release(c->budgetBytes);
  delete c;
}
}  // namespace

bool realAvailable(std::string* why) {
  const Probe& p = probe();
  if (!p.ok && why) *why = p.why;
  return p.ok;
}

int realDeviceCount() {
  return probe().devices;
}

PointerInfo realPointerInfo(const void* ptr) {
  PointerInfo info;
  if (!ptr || !probe().ok) return info;
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, ptr) != cudaSuccess) {
    (void)cudaGetLastError();
    return info;
  }
  if (a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged) {
    info.memory = Memory::kDevice;
    info.device = a.device;
  }
  return info;
}

Result<std::unique_ptr<StreamStage>> StreamStage::createReal(void* streamPtr, const Buffers& d) {
  if (!probe().ok) return Status(Code::kCudaError, "device buffers: " + probe().why);
  auto stream = static_cast<cudaStream_t>(streamPtr);
  // The buffers' device, current on this thread: no context is created on another device.
  if (d.device >= 0) LOOM_CUDA_TRY(cudaSetDevice(d.device), "cudaSetDevice for the buffers");
  std::unique_ptr<StreamStage> st(new StreamStage());
  st->device_ = d.device;
  auto ctl = std::make_unique<Control>();
  const PinnedLayout layout = layoutOf(d);
  if (d.budget) {
    const size_t bytes = layout.sendBlock + layout.recvBlock;
    LOOM_RETURN_IF_ERROR(d.budget->acquire(bytes, d.mayWait, d.waitUntil, d.abort));
    ctl->budget = d.budget;
    ctl->budgetBytes = bytes;
  }
  if (layout.sendBlock > 0) {
    Result<void*> b = takePinned(layout.sendBlock);
    if (!b.isOk()) {
      if (ctl->budget) ctl->budget->release(ctl->budgetBytes);
      return b.status();
    }
    ctl->sendBlock = *b;
    ctl->sendBlockBytes = layout.sendBlock;
  }
  if (layout.recvBlock > 0) {
    Result<void*> b = takePinned(layout.recvBlock);
    if (!b.isOk()) {
      givePinned(ctl->sendBlock, ctl->sendBlockBytes);
      if (ctl->budget) ctl->budget->release(ctl->budgetBytes);
      return b.status();
    }
    ctl->recvBlock = *b;
    ctl->recvBlockBytes = layout.recvBlock;
  }
  placeCopies(layout, ctl->sendBlock, ctl->recvBlock, &st->hostSend_, &st->hostRecv_);
  auto giveBack = [&] {
    givePinned(ctl->sendBlock, ctl->sendBlockBytes);
    givePinned(ctl->recvBlock, ctl->recvBlockBytes);
    if (ctl->flag) giveFlag(ctl->flag);
    if (ctl->budget) ctl->budget->release(ctl->budgetBytes);
  };
  Result<volatile uint32_t*> flag = takeFlag();
  if (!flag.isOk()) {
    giveBack();
    return flag.status();
  }
  ctl->flag = *flag;
  st->flag_ = *flag;

  cudaEvent_t ev = nullptr;
  cudaError_t err = cudaEventCreateWithFlags(&ev, cudaEventDisableTiming);
  if (err == cudaSuccess && d.sendBytes > 0)
    err = cudaMemcpyAsync(const_cast<void*>(st->hostSend_), d.send, d.sendBytes, cudaMemcpyDefault,
                          stream);
  // A device-resident scalar rides in the flag's 64-byte slot, 8 bytes after the flag.
  if (err == cudaSuccess && d.scalarBytes > 0) {
    void* at = const_cast<uint32_t*>(*flag) + 2;
    err = cudaMemcpyAsync(at, d.scalar, std::min<size_t>(d.scalarBytes, 8), cudaMemcpyDefault,
                          stream);
    st->hostScalar_ = at;
  }
  if (err == cudaSuccess) err = cudaEventRecord(ev, stream);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    if (ev) cudaEventDestroy(ev);
    giveBack();
    return cudaStatus(err, "staging the send buffer on the stream");
  }
  st->event_ = ev;
  st->stream_ = streamPtr;
  st->recvDevice_ = d.recv;
  st->recvBytes_ = d.recvBytes;
  st->control_ = ctl.release();  // freed by the host function once finishOnStream() ran
  return st;
}

Status StreamStage::finishReal() {
  auto stream = static_cast<cudaStream_t>(stream_);
  if (device_ >= 0) LOOM_CUDA_TRY(cudaSetDevice(device_), "cudaSetDevice for the buffers");
  // From here the stream waits on the flag: every failure path sets it (the destructor).
  void* flagDev = nullptr;
  cudaError_t err = cudaHostGetDevicePointer(&flagDev, const_cast<uint32_t*>(flag_), 0);
  if (err == cudaSuccess) {
    WaitValueFn wait = waitValueFn();
    CUresult r = CUDA_ERROR_NOT_SUPPORTED;
    if (wait)
      r = wait(reinterpret_cast<CUstream>(stream), reinterpret_cast<CUdeviceptr>(flagDev), 1,
               CU_STREAM_WAIT_VALUE_GEQ);
    if (r != CUDA_SUCCESS) {
      if (wait) {
        LOOM_LOG(kInfo, kColl) << "cuStreamWaitValue32 failed (CUresult " << r
                               << "); streams wait on a polling kernel from now on";
        gWaitMode = 0;
      }
      err = detail::launchWaitFlag(static_cast<const volatile uint32_t*>(flagDev), stream);
    }
  }
  if (err == cudaSuccess && recvBytes_ > 0)
    err = cudaMemcpyAsync(recvDevice_, hostRecv_, recvBytes_, cudaMemcpyDefault, stream);
  if (err == cudaSuccess) err = cudaLaunchHostFunc(stream, releaseControl, control_);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    // The stream may already wait on the flag: set it. The pinned memory is leaked rather
    // than reused while a copy might still use it.
    *flag_ = 1;
    completed_ = true;
    delete control_;
    control_ = nullptr;
    return cudaStatus(err, "ordering the collective on the stream");
  }
  control_ = nullptr;  // the host function owns it now
  return Status::ok();
}

void StreamStage::destroyReal() {
  if (control_) {
    // finishOnStream() never ran (a group that was dropped): once the copy out is done, the
    // pinned memory can go back.
    if (event_) cudaEventSynchronize(static_cast<cudaEvent_t>(event_));
    (void)cudaGetLastError();
    releaseControl(control_);
    control_ = nullptr;
  }
  if (event_) cudaEventDestroy(static_cast<cudaEvent_t>(event_));
}

Status StreamStage::inputsReadyReal(bool* ready) {
  if (device_ >= 0) LOOM_CUDA_TRY(cudaSetDevice(device_), "cudaSetDevice on the worker");
  const cudaError_t err = cudaEventQuery(static_cast<cudaEvent_t>(event_));
  *ready = err == cudaSuccess;
  if (err == cudaSuccess || err == cudaErrorNotReady) return Status::ok();
  (void)cudaGetLastError();
  return cudaStatus(err, "waiting for the stream to reach the collective");
}

void StreamStage::completeReal() {
  if (!flag_) return;
  std::atomic_thread_fence(std::memory_order_seq_cst);  // results before the flag
  *flag_ = 1;
}

Status realReduceN(DataType type, RedOpKind op, void* dst, const void* const* srcs, int nsrcs,
                   size_t count, void* stream) {
  LOOM_CUDA_TRY(detail::launchReduceN(static_cast<int>(type), static_cast<int>(op), dst, srcs,
                                      nsrcs, count, static_cast<cudaStream_t>(stream)),
                "reduction kernel");
  return Status::ok();
}

Status realMemcpyAsync(void* dst, const void* src, size_t bytes, void* stream) {
  LOOM_CUDA_TRY(
      cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, static_cast<cudaStream_t>(stream)),
      "cudaMemcpyAsync");
  return Status::ok();
}

Status realEventCreate(void** event) {
  cudaEvent_t e = nullptr;
  LOOM_CUDA_TRY(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
  *event = e;
  return Status::ok();
}

void realEventDestroy(void* event) {
  if (event) cudaEventDestroy(static_cast<cudaEvent_t>(event));
}

Status realEventRecord(void* event, void* stream) {
  LOOM_CUDA_TRY(cudaEventRecord(static_cast<cudaEvent_t>(event), static_cast<cudaStream_t>(stream)),
                "cudaEventRecord");
  return Status::ok();
}

Status realStreamWaitEvent(void* stream, void* event) {
  LOOM_CUDA_TRY(
      cudaStreamWaitEvent(static_cast<cudaStream_t>(stream), static_cast<cudaEvent_t>(event), 0),
      "cudaStreamWaitEvent");
  return Status::ok();
}

Status realStreamSynchronize(void* stream) {
  LOOM_CUDA_TRY(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)), "cudaStreamSynchronize");
  return Status::ok();
}

Status realEventQuery(void* event, bool* done) {
  const cudaError_t err = cudaEventQuery(static_cast<cudaEvent_t>(event));
  *done = err == cudaSuccess;
  (void)cudaGetLastError();  // cudaErrorNotReady is not sticky, but is "last"
  if (err == cudaSuccess || err == cudaErrorNotReady) return Status::ok();
  return cudaStatus(err, "cudaEventQuery");
}

Status realDeviceAlloc(size_t bytes, void** ptr) {
  LOOM_CUDA_TRY(cudaMalloc(ptr, bytes), "cudaMalloc of " + std::to_string(bytes) + " bytes");
  return Status::ok();
}

void realDeviceFree(void* ptr) {
  if (ptr) cudaFree(ptr);
}

Status realDeviceAllocAsync(size_t bytes, void** ptr, void* stream) {
  LOOM_CUDA_TRY(cudaMallocAsync(ptr, bytes, static_cast<cudaStream_t>(stream)),
                "cudaMallocAsync of " + std::to_string(bytes) + " bytes");
  return Status::ok();
}

void realDeviceFreeAsync(void* ptr, void* stream) {
  if (ptr) cudaFreeAsync(ptr, static_cast<cudaStream_t>(stream));
}

Status realStreamCreate(void** stream) {
  cudaStream_t s = nullptr;
  LOOM_CUDA_TRY(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
  *stream = s;
  return Status::ok();
}

void realStreamDestroy(void* stream) {
  if (stream) cudaStreamDestroy(static_cast<cudaStream_t>(stream));
}

Status realSetDevice(int device) {
  LOOM_CUDA_TRY(cudaSetDevice(device), "cudaSetDevice(" + std::to_string(device) + ")");
  return Status::ok();
}

size_t pooledPinnedBytes() {
  PinnedPool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  return p.pooled;
}

#endif  // LOOM_HAVE_CUDA

// ---- the emulation (testing::useFakeDevice) ------------------------------------------------

namespace {

std::atomic<bool> gFake{false};

class FakeStream;
// Every stream ever created, for deviceFree (cudaFree waits for the device's work, as here).
// Streams are never deleted (streamDestroy stops them), so the list may be walked unlocked.
std::mutex gFakeStreamsMu;
std::vector<FakeStream*>& fakeStreams() {
  static auto* s = new std::vector<FakeStream*>();
  return *s;
}

// A stream: one thread running its operations in order.
class FakeStream {
 public:
  FakeStream() : thread_([this] { loop(); }) {
    std::lock_guard<std::mutex> lock(gFakeStreamsMu);
    fakeStreams().push_back(this);
  }
  // Runs what is queued, then ends the thread; the object stays (see fakeStreams).
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void push(std::function<void()> op) {
    std::lock_guard<std::mutex> lock(mu_);
    ops_.push_back(std::move(op));
    ++pending_;
    cv_.notify_all();
  }
  void synchronize() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return pending_ == 0; });
  }

 private:
  void loop() {
    for (;;) {
      std::function<void()> op;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !ops_.empty(); });
        if (ops_.empty()) return;
        op = std::move(ops_.front());
        ops_.pop_front();
      }
      op();
      std::lock_guard<std::mutex> lock(mu_);
      --pending_;
      cv_.notify_all();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> ops_;
  int pending_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

// NULL is the default stream, as in CUDA.
FakeStream* fakeStream(void* s) {
  static FakeStream* defaultStream = new FakeStream();
  return s ? static_cast<FakeStream*>(s) : defaultStream;
}

struct FakeMemory {
  std::mutex mu;
  std::map<uintptr_t, size_t> blocks;  // start -> bytes
};
FakeMemory& fakeMemory() {
  static FakeMemory* m = new FakeMemory();
  return *m;
}

// "Device memory" of the emulation: plain memory that pointerInfo reports as device memory.
Status fakeAlloc(size_t bytes, void** ptr) {
  *ptr = std::malloc(bytes ? bytes : 1);
  if (!*ptr) return Status(Code::kCudaError, "fake device: out of memory");
  detail::fakeRemember(*ptr, bytes ? bytes : 1);
  return Status::ok();
}

void fakeFree(void* ptr) {
  detail::fakeForget(ptr);
  std::free(ptr);
}

}  // namespace

namespace detail {
bool fakeActive() {
  return gFake;
}
void fakeRemember(void* ptr, size_t bytes) {
  FakeMemory& m = fakeMemory();
  std::lock_guard<std::mutex> lock(m.mu);
  m.blocks[reinterpret_cast<uintptr_t>(ptr)] = bytes;
}
void fakeForget(void* ptr) {
  FakeMemory& m = fakeMemory();
  std::lock_guard<std::mutex> lock(m.mu);
  m.blocks.erase(reinterpret_cast<uintptr_t>(ptr));
}
void fakeSynchronizeAll() {
  std::vector<FakeStream*> streams;
  {
    std::lock_guard<std::mutex> lock(gFakeStreamsMu);
    streams = fakeStreams();
  }
  for (FakeStream* st : streams)
    st->synchronize();
}
}  // namespace detail

struct StreamStage::Fake {
  std::vector<uint8_t> send, recv;  // the "pinned" copies
  alignas(8) unsigned char scalar[8] = {};
  std::atomic<bool> inputsReady{false};
  std::atomic<bool> done{false};
  bool finishQueued = false;  // finishOnStream() ran
  std::shared_ptr<StageBudget> budget;
  size_t budgetBytes = 0;
  std::atomic<bool> released{false};
  void releaseBudget() {
    if (budget && !released.exchange(true)) budget->release(budgetBytes);
  }
};

Result<std::unique_ptr<StreamStage>> StreamStage::createFake(void* stream, const Buffers& d) {
  std::unique_ptr<StreamStage> st(new StreamStage());
  auto f = std::make_shared<Fake>();
  const PinnedLayout layout = layoutOf(d);
  if (d.budget) {
    const size_t bytes = layout.sendBlock + layout.recvBlock;
    LOOM_RETURN_IF_ERROR(d.budget->acquire(bytes, d.mayWait, d.waitUntil, d.abort));
    f->budget = d.budget;
    f->budgetBytes = bytes;
  }
  f->send.resize(layout.sendBlock);
  f->recv.resize(layout.recvBlock);
  placeCopies(layout, layout.sendBlock ? f->send.data() : nullptr,
              layout.recvBlock ? f->recv.data() : nullptr, &st->hostSend_, &st->hostRecv_);
  FakeStream* s = fakeStream(stream);
  void* hs = const_cast<void*>(st->hostSend_);
  if (d.scalarBytes) st->hostScalar_ = f->scalar;
  s->push([f, hs, d] {
    if (d.sendBytes) std::memcpy(hs, d.send, d.sendBytes);
    if (d.scalarBytes) std::memcpy(f->scalar, d.scalar, std::min<size_t>(d.scalarBytes, 8));
    f->inputsReady = true;
  });
  st->stream_ = stream;
  st->recvDevice_ = d.recv;
  st->recvBytes_ = d.recvBytes;
  st->fake_ = std::move(f);
  return st;
}

Status StreamStage::finishOnStream() {
  if (!fake_) return finishReal();
  // The stream waits for the host part, as cuStreamWaitValue32 does (bounded, so a broken test
  // cannot hang its process forever).
  std::shared_ptr<Fake> f = fake_;
  void* hr = hostRecv_;
  void* recv = recvDevice_;
  size_t bytes = recvBytes_;
  fakeStream(stream_)->push([f, hr, recv, bytes] {
    const Deadline until = Deadline::afterMs(600000);
    while (!f->done.load(std::memory_order_acquire) && !until.expired())
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    if (bytes) std::memmove(recv, hr, bytes);
    f->releaseBudget();
  });
  f->finishQueued = true;
  return Status::ok();
}

Result<std::unique_ptr<StreamStage>> StreamStage::create(void* stream, const Buffers& device) {
  return gFake ? createFake(stream, device) : createReal(stream, device);
}

StreamStage::~StreamStage() {
  complete();
  if (!fake_)
    destroyReal();
  else if (!fake_->finishQueued)
    fake_->releaseBudget();  // dropped before its stream side was complete
}

Status pollUntil(const std::function<Status(bool*)>& ready, Deadline deadline,
                 const std::atomic<bool>* abort, const std::string& aborted,
                 const std::string& late) {
  for (int polls = 0;; ++polls) {
    bool done = false;
    LOOM_RETURN_IF_ERROR(ready(&done));
    if (done) return Status::ok();
    if (abort && abort->load(std::memory_order_acquire)) return Status(Code::kAborted, aborted);
    if (deadline.expired()) return Status(Code::kTimeout, late);
    if (polls < 64)
      std::this_thread::yield();
    else
      std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

Status StreamStage::waitInputs(Deadline deadline, const std::atomic<bool>* abort) {
  return pollUntil(
      [this](bool* ready) {
        if (!fake_) return inputsReadyReal(ready);
        *ready = fake_->inputsReady.load(std::memory_order_acquire);
        return Status::ok();
      },
      deadline, abort, "communicator aborted while waiting for the stream",
      "the stream did not reach the collective before the communicator's timeout (earlier work "
      "on the stream is still running; LOOM_TIMEOUT_MS)");
}

void StreamStage::complete() {
  if (completed_) return;
  completed_ = true;
  if (fake_)
    fake_->done.store(true, std::memory_order_release);
  else
    completeReal();
}

namespace testing {
void useFakeDevice() {
  gFake = true;
  gInUse = true;
}
bool fakeDevice() {
  return gFake;
}
}  // namespace testing

bool available(std::string* why) {
  return gFake ? true : realAvailable(why);
}

int deviceCount() {
  return gFake ? 1 : realDeviceCount();
}

PointerInfo pointerInfo(const void* p) {
  if (!gFake) return realPointerInfo(p);
  PointerInfo info;
  FakeMemory& m = fakeMemory();
  std::lock_guard<std::mutex> lock(m.mu);
  auto at = reinterpret_cast<uintptr_t>(p);
  auto it = m.blocks.upper_bound(at);
  if (p && it != m.blocks.begin()) {
    --it;
    if (at < it->first + it->second) info = {Memory::kDevice, 0};
  }
  return info;
}

Status reduceN(DataType type, RedOpKind op, void* dst, const void* const* srcs, int nsrcs,
               size_t count, void* stream) {
  if (!gFake) return realReduceN(type, op, dst, srcs, nsrcs, count, stream);
  std::vector<const void*> s(srcs, srcs + nsrcs);
  fakeStream(stream)->push(
      [=] { loom::reduceN(type, op, dst, s.data(), static_cast<int>(s.size()), count); });
  return Status::ok();
}

Status memcpyAsync(void* dst, const void* src, size_t bytes, void* stream) {
  if (!gFake) return realMemcpyAsync(dst, src, bytes, stream);
  // As CUDA does with pageable host memory: a copy to it returns when done, a copy from it
  // has read the source when it returns.
  FakeStream* s = fakeStream(stream);
  if (pointerInfo(dst).memory == Memory::kHost) {
    s->push([=] { std::memmove(dst, src, bytes); });
    s->synchronize();
  } else if (pointerInfo(src).memory == Memory::kHost) {
    auto copy = std::make_shared<std::vector<uint8_t>>(static_cast<const uint8_t*>(src),
                                                       static_cast<const uint8_t*>(src) + bytes);
    s->push([=] { std::memcpy(dst, copy->data(), bytes); });
  } else {
    s->push([=] { std::memmove(dst, src, bytes); });
  }
  return Status::ok();
}

namespace {
// An event of the emulation: how many records were made, how many the streams completed.
struct FakeEvent {
  std::atomic<uint64_t> recorded{0};
  std::atomic<uint64_t> completed{0};
};
}  // namespace

Status eventCreate(void** event) {
  if (!gFake) return realEventCreate(event);
  // Kept for the life of the process (records queued on a stream may outlive eventDestroy),
  // and reachable from here, so leak checkers see no leak.
  static std::mutex mu;
  static auto* all = new std::vector<std::unique_ptr<FakeEvent>>();
  std::lock_guard<std::mutex> lock(mu);
  all->push_back(std::make_unique<FakeEvent>());
  *event = all->back().get();
  return Status::ok();
}

void eventDestroy(void* event) {
  if (!gFake) return realEventDestroy(event);
  // Records still queued on a stream would touch it: the emulation keeps events alive.
  (void)event;
}

Status eventRecord(void* event, void* stream) {
  if (!gFake) return realEventRecord(event, stream);
  auto* e = static_cast<FakeEvent*>(event);
  const uint64_t n = ++e->recorded;
  fakeStream(stream)->push([e, n] {
    uint64_t c = e->completed.load();
    while (c < n && !e->completed.compare_exchange_weak(c, n)) {
    }
  });
  return Status::ok();
}

Status streamWaitEvent(void* stream, void* event) {
  if (!gFake) return realStreamWaitEvent(stream, event);
  auto* e = static_cast<FakeEvent*>(event);
  const uint64_t target = e->recorded.load();
  fakeStream(stream)->push([e, target] {
    const Deadline until = Deadline::afterMs(600000);
    while (e->completed.load() < target && !until.expired())
      std::this_thread::sleep_for(std::chrono::microseconds(20));
  });
  return Status::ok();
}

Status eventQuery(void* event, bool* done) {
  if (!gFake) return realEventQuery(event, done);
  auto* e = static_cast<FakeEvent*>(event);
  *done = e->completed.load() >= e->recorded.load();
  return Status::ok();
}

Status streamSynchronize(void* stream) {
  if (!gFake) return realStreamSynchronize(stream);
  fakeStream(stream)->synchronize();
  return Status::ok();
}

Status deviceAlloc(size_t bytes, void** ptr) {
  if (!gFake) return realDeviceAlloc(bytes, ptr);
  return fakeAlloc(bytes, ptr);
}

void deviceFree(void* ptr) {
  if (!gFake) return realDeviceFree(ptr);
  if (!ptr) return;
  detail::fakeSynchronizeAll();
  fakeFree(ptr);
}

Status deviceAllocAsync(size_t bytes, void** ptr, void* stream) {
  if (!gFake) return realDeviceAllocAsync(bytes, ptr, stream);
  return fakeAlloc(bytes, ptr);
}

void deviceFreeAsync(void* ptr, void* stream) {
  if (!gFake) return realDeviceFreeAsync(ptr, stream);
  if (!ptr) return;
  fakeStream(stream)->push([ptr] { fakeFree(ptr); });
}

Status streamCreate(void** stream) {
  if (!gFake) return realStreamCreate(stream);
  *stream = new FakeStream();
  return Status::ok();
}

void streamDestroy(void* stream) {
  if (!gFake) return realStreamDestroy(stream);
  if (stream) static_cast<FakeStream*>(stream)->stop();
}

Status setDevice(int device) {
  return gFake ? Status::ok() : realSetDevice(device);
}

}  // namespace loom::cuda
