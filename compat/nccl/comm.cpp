// Handles, errors, asynchronous work and CUDA probing for compat/nccl (comm.h).
#include "comm.h"

#include <dlfcn.h>

#include <cstdio>

namespace loom::nccl {

namespace {

thread_local std::string tLastError;

std::mutex gRegistryMu;
std::set<const ncclComm*>& registry() {
  static auto* live = new std::set<const ncclComm*>();  // never freed: used until exit
  return *live;
}

}  // namespace

ncclResult_t fail(ncclResult_t code, const std::string& msg) {
  tLastError = msg;
  return code;
}

void setLastError(const std::string& msg) {
  tLastError = msg;
}

const char* lastError() {
  return tLastError.c_str();
}

ncclResult_t toNccl(loomResult_t r) {
  switch (r) {
    case loomTimeout:
      return ncclRemoteError;
    case loomAborted:
      return ncclInvalidUsage;
    default:
      return r >= loomSuccess && r < loomTimeout ? static_cast<ncclResult_t>(r) : ncclInternalError;
  }
}

ncclResult_t fromLoom(loomResult_t r, const char* what) {
  if (r == loomSuccess) return ncclSuccess;
  return fail(toNccl(r), std::string(what) + ": " + loomGetLastError(nullptr));
}

AsyncWork::~AsyncWork() {
  if (work_) (void)loomWorkFree(work_);
}

bool AsyncWork::poll(loomResult_t* result, std::string* message) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!done_) {
    int isDone = 0;
    loomResult_t r = loomWorkTest(work_, &isDone);
    if (!isDone && r == loomSuccess) return false;
    done_ = true;
    result_ = r;
    if (r != loomSuccess) message_ = loomGetLastError(nullptr);
  }
  *result = result_;
  *message = message_;
  return true;
}

loomResult_t AsyncWork::wait(std::string* message) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!done_) {
    result_ = loomWorkWait(work_, -1);
    if (result_ != loomSuccess) message_ = loomGetLastError(nullptr);
    done_ = true;
  }
  *message = message_;
  return result_;
}

void registerComm(ncclComm* c) {
  std::lock_guard<std::mutex> lock(gRegistryMu);
  registry().insert(c);
}

void unregisterComm(ncclComm* c) {
  std::lock_guard<std::mutex> lock(gRegistryMu);
  registry().erase(c);
}

ncclResult_t checkComm(const ncclComm* comm, const char* fn, bool ready) {
  if (comm == nullptr) return fail(ncclInvalidArgument, std::string(fn) + ": comm is NULL");
  {
    std::lock_guard<std::mutex> lock(gRegistryMu);
    if (registry().count(comm) == 0) {
      char buf[160];
      std::snprintf(buf, sizeof(buf),
                    "%s: comm %p is not a live communicator (destroyed, aborted or never created)",
                    fn, static_cast<const void*>(comm));
      return fail(ncclInvalidArgument, buf);
    }
  }
  if (!ready) return ncclSuccess;
  switch (comm->state.load()) {
    case CommState::kReady:
      return ncclSuccess;
    case CommState::kInitializing:
      return fail(ncclInvalidArgument,
                  std::string(fn) +
                      ": the communicator is still being created; use it after "
                      "ncclCommGetAsyncError reports ncclSuccess");
    case CommState::kFailed:
      break;
  }
  return fail(ncclInvalidArgument,
              std::string(fn) + ": the communicator's creation failed: " + comm->initError);
}

ncclComm* newComm(bool blocking, const std::string& name) {
  auto* c = new ncclComm();
  c->blocking = blocking;
  c->name = name;
  registerComm(c);
  return c;
}

void finishInit(ncclComm* comm, ncclResult_t r) {
  if (r == ncclSuccess && comm->loom) {
    (void)loomCommUserRank(comm->loom, &comm->rank);
    (void)loomCommCount(comm->loom, &comm->nranks);
  }
  comm->initResult = r;
  if (r != ncclSuccess) comm->initError = lastError();
  comm->state.store(r == ncclSuccess ? CommState::kReady : CommState::kFailed);
}

ncclResult_t startInit(ncclComm* comm, bool async, std::function<ncclResult_t(ncclComm*)> job) {
  if (!async) {
    ncclResult_t r = job(comm);
    finishInit(comm, r);
    return r;
  }
  comm->worker = std::thread([comm, job = std::move(job)] { finishInit(comm, job(comm)); });
  return ncclInProgress;
}

void joinWorker(ncclComm* comm) {
  if (comm->worker.joinable()) comm->worker.join();
}

void attachWork(ncclComm* comm, std::shared_ptr<AsyncWork> work) {
  std::lock_guard<std::mutex> lock(comm->mu);
  comm->pending.push_back(std::move(work));
}

namespace {

// With comm->mu held: records a finished work's failure as the sticky error.
void recordOutcome(ncclComm* comm, loomResult_t r, const std::string& message) {
  if (r == loomSuccess || comm->asyncError != ncclSuccess) return;
  comm->asyncError = toNccl(r);
  comm->asyncMessage = message;
}

}  // namespace

ncclResult_t pollWork(ncclComm* comm) {
  std::lock_guard<std::mutex> lock(comm->mu);
  bool busy = false;
  for (auto it = comm->pending.begin(); it != comm->pending.end();) {
    loomResult_t r;
    std::string message;
    if (!(*it)->poll(&r, &message)) {
      busy = true;
      ++it;
      continue;
    }
    recordOutcome(comm, r, message);
    it = comm->pending.erase(it);
  }
  if (comm->asyncError != ncclSuccess) return fail(comm->asyncError, comm->asyncMessage);
  return busy ? ncclInProgress : ncclSuccess;
}

ncclResult_t waitWork(ncclComm* comm) {
  std::vector<std::shared_ptr<AsyncWork>> pending;
  {
    std::lock_guard<std::mutex> lock(comm->mu);
    pending.swap(comm->pending);
  }
  for (auto& w : pending) {
    std::string message;
    loomResult_t r = w->wait(&message);
    std::lock_guard<std::mutex> lock(comm->mu);
    recordOutcome(comm, r, message);
  }
  std::lock_guard<std::mutex> lock(comm->mu);
  if (comm->asyncError != ncclSuccess) return fail(comm->asyncError, comm->asyncMessage);
  return ncclSuccess;
}

ncclResult_t readConfig(const ncclConfig_t* config, const char* fn, bool* blocking,
                        std::string* name) {
  if (config == nullptr) return ncclSuccess;
  // Every NCCL version's ncclConfig_t starts with size, magic, version, blocking.
  constexpr size_t kMinSize = offsetof(ncclConfig_t, blocking) + sizeof(int);
  if (config->magic != 0xcafebeef || config->size < kMinSize)
    return fail(ncclInvalidArgument,
                std::string(fn) +
                    ": config was not initialised with NCCL_CONFIG_INITIALIZER (bad size or "
                    "magic)");
  const int b = config->blocking;
  if (b != NCCL_CONFIG_UNDEF_INT && b != 0 && b != 1)
    return fail(ncclInvalidArgument,
                std::string(fn) + ": config.blocking must be 0 or 1, got " + std::to_string(b));
  if (b != NCCL_CONFIG_UNDEF_INT) *blocking = b == 1;
  const bool hasName = config->size >= offsetof(ncclConfig_t, commName) + sizeof(const char*);
  if (hasName && config->commName) *name = config->commName;
  return ncclSuccess;
}

loomConfig_t loomConfigFor(const std::string& name) {
  loomConfig_t c = LOOM_CONFIG_INITIALIZER;
  if (!name.empty()) c.commName = name.c_str();
  return c;
}

// ---- CUDA probing ----
// compat never loads CUDA itself (loom's GPU path has its own runtime). A process that uses
// CUDA has the driver library loaded; dlopen(RTLD_NOLOAD) finds it without loading it, and the
// driver API answers "is this pointer device memory" and "which device is current", and
// allocates for ncclMemAlloc.

namespace {

using PointerGetAttributeFn = int (*)(void* data, int attribute, uintptr_t ptr);
using CtxGetDeviceFn = int (*)(int* device);
constexpr int kCuPointerAttributeMemoryType = 2;  // CU_POINTER_ATTRIBUTE_MEMORY_TYPE
constexpr int kCuPointerAttributeIsManaged = 8;   // CU_POINTER_ATTRIBUTE_IS_MANAGED
constexpr unsigned kCuMemoryTypeDevice = 2;       // CU_MEMORYTYPE_DEVICE

void* cudaDriver() {
  static std::atomic<void*> handle{nullptr};
  void* h = handle.load();
  if (h) return h;
  h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  if (h) handle.store(h);
  return h;
}

}  // namespace

void* cudaDriverSymbol(const char* name) {
  void* h = cudaDriver();
  return h ? dlsym(h, name) : nullptr;
}

int currentCudaDevice() {
  void* h = cudaDriver();
  if (!h) return -1;
  auto getDevice = reinterpret_cast<CtxGetDeviceFn>(dlsym(h, "cuCtxGetDevice"));
  int device = -1;
  if (!getDevice || getDevice(&device) != 0) return -1;
  return device;
}

bool isDeviceMemory(const void* p) {
  if (p == nullptr) return false;
  void* h = cudaDriver();
  if (!h) return false;
  auto getAttr = reinterpret_cast<PointerGetAttributeFn>(dlsym(h, "cuPointerGetAttribute"));
  if (!getAttr) return false;
  unsigned memoryType = 0;
  if (getAttr(&memoryType, kCuPointerAttributeMemoryType, reinterpret_cast<uintptr_t>(p)) != 0)
    return false;  // unknown to CUDA (plain host memory), or CUDA not initialised
  if (memoryType != kCuMemoryTypeDevice) return false;
  unsigned managed = 0;
  if (getAttr(&managed, kCuPointerAttributeIsManaged, reinterpret_cast<uintptr_t>(p)) == 0 &&
      managed)
    return false;  // managed memory is host-accessible
  return true;
}

}  // namespace loom::nccl
