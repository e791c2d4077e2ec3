// The NCCL communicator handle of compat/nccl, over one loom communicator.
//
// ncclComm owns a loomComm_t (public API only: DESIGN.md section 2) plus what NCCL has and
// loom's C API does not: blocking or non-blocking mode, an init or split running on a worker
// thread, the asynchronous work of a non-blocking communicator, registrations, and PreMulSum
// ops whose scalar is read at each call (ncclScalarDevice).
//
// Lifetime: created by an init, split or shrink function; freed by ncclCommDestroy or
// ncclCommAbort. A registry tells a live handle from a stale one (InvalidArgument, not a
// crash). Thread-safety: as NCCL, one thread issues operations on a communicator at a time;
// ncclCommGetAsyncError and ncclCommAbort may be called from any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "exported.h"
#include "loom/loom.h"

namespace loom::nccl {

// The value of an enum argument as the caller passed it. A C caller may pass any int (an
// invalid datatype, op or result code is its error to report), and reading an out-of-range
// value through the C++ enum type is undefined, so arguments are copied out as bytes.
template <class E>
int rawValue(const E& e) {
  static_assert(sizeof(E) == sizeof(int));
  int v;
  std::memcpy(&v, &e, sizeof(v));
  return v;
}

// Records msg as the calling thread's last error (ncclGetLastError) and returns code.
ncclResult_t fail(ncclResult_t code, const std::string& msg);
// Maps a failed loom call to NCCL: loomTimeout becomes ncclRemoteError and loomAborted
// ncclInvalidUsage (NCCL has neither); the message is loom's, prefixed with `what`.
ncclResult_t fromLoom(loomResult_t r, const char* what);
ncclResult_t toNccl(loomResult_t r);
// The calling thread's last error message.
const char* lastError();
void setLastError(const std::string& msg);

// A loom work handle shared by every non-blocking communicator of one group.
class AsyncWork {
 public:
  explicit AsyncWork(loomWork_t w) : work_(w) {}
  ~AsyncWork();
  AsyncWork(const AsyncWork&) = delete;
  AsyncWork& operator=(const AsyncWork&) = delete;
  // True once finished; *result and *message describe the outcome.
  bool poll(loomResult_t* result, std::string* message);
  // Waits until finished (loom bounds every operation by its timeout).
  loomResult_t wait(std::string* message);

 private:
  std::mutex mu_;
  loomWork_t work_;
  bool done_ = false;
  loomResult_t result_ = loomSuccess;
  std::string message_;
};

enum class CommState { kInitializing, kReady, kFailed };

// A PreMulSum op made by ncclRedOpCreatePreMulSum.
struct PreMulOp {
  ncclDataType_t datatype;
  const void* scalar;  // ncclScalarDevice: host-accessible, read at every call; else nullptr
};

}  // namespace loom::nccl

struct ncclComm {
  static constexpr uint64_t kMagic = 0x6e63636c6c6f6f6dull;  // "nccl" "loom"
  uint64_t magic = kMagic;
  bool ghost = false;  // internal: a NOCOLOR rank's part in a grouped split (never returned)
  std::atomic<int> activeCalls{0};  // calls in flight; ncclCommAbort waits for them
  int rank = -1, nranks = 0;        // set when ready
  std::atomic<loom::nccl::CommState> state{loom::nccl::CommState::kInitializing};
  loomComm_t loom = nullptr;
  bool blocking = true;
  int cudaDevice = -1;  // -1: no CUDA device (host-only)
  std::string name;     // ncclConfig_t.commName, kept for a worker thread and for children
  // The init, split or shrink of a non-blocking (or grouped) communicator runs here.
  std::thread worker;
  ncclResult_t initResult = ncclSuccess;
  std::string initError;

  std::mutex mu;  // guards everything below
  std::vector<std::shared_ptr<loom::nccl::AsyncWork>> pending;
  ncclResult_t asyncError = ncclSuccess;  // sticky, from a failed asynchronous operation
  std::string asyncMessage;
  bool finalized = false;
  bool revoked = false;
  std::set<void*> registrations;
  // Every PreMulSum op of this comm by ncclRedOp_t value: loom's own (host-immediate scalar,
  // values from ncclNumOps) and compat's (ncclScalarDevice, values from kDeviceOpBase).
  std::map<int, loom::nccl::PreMulOp> ops;
  int nextDeviceOp = 0;
};

namespace loom::nccl {

// Values of ncclRedOp_t made for ncclScalarDevice ops start here (loom's own PreMulSum ops
// count up from ncclNumOps and never reach it).
inline constexpr int kDeviceOpBase = 1 << 30;

// Keeps a communicator from being freed by a concurrent ncclCommAbort while a call uses it.
class CallScope {
 public:
  explicit CallScope(ncclComm* c) : c_(c) { c_->activeCalls.fetch_add(1); }
  ~CallScope() { c_->activeCalls.fetch_sub(1); }
  CallScope(const CallScope&) = delete;
  CallScope& operator=(const CallScope&) = delete;

 private:
  ncclComm* c_;
};

// Registry of live handles.
void registerComm(ncclComm* c);
void unregisterComm(ncclComm* c);
// InvalidArgument unless comm is live; with `ready`, also unless its init has finished
// (NCCL: "use the communicator only after ncclCommGetAsyncError returned ncclSuccess").
ncclResult_t checkComm(const ncclComm* comm, const char* fn, bool ready);

// A new handle in kInitializing state, registered.
ncclComm* newComm(bool blocking, const std::string& name);
// Runs job (which sets comm->loom and returns a result) now on this thread, or, when
// `async`, on the comm's worker thread. Marks the comm ready or failed.
ncclResult_t startInit(ncclComm* comm, bool async, std::function<ncclResult_t(ncclComm*)> job);
// Marks comm ready (caching rank and size) or failed with the calling thread's last error.
void finishInit(ncclComm* comm, ncclResult_t r);
// Waits for a worker thread to finish (it is bounded by loom's timeout).
void joinWorker(ncclComm* comm);

// Asynchronous work: attach to a comm; poll all (ncclInProgress while any is pending, else the
// sticky error or ncclSuccess); wait for all.
void attachWork(ncclComm* comm, std::shared_ptr<AsyncWork> work);
ncclResult_t pollWork(ncclComm* comm);
ncclResult_t waitWork(ncclComm* comm);

// Settings from an ncclConfig_t (may be NULL). *blocking and *name are left alone for unset
// fields. InvalidArgument for a config not set by NCCL_CONFIG_INITIALIZER.
ncclResult_t readConfig(const ncclConfig_t* config, const char* fn, bool* blocking,
                        std::string* name);
// The loomConfig_t for a communicator named `name` (points into `name`).
loomConfig_t loomConfigFor(const std::string& name);

// The loom op for `op` in a call with `datatype` (memory.cpp). For an ncclScalarDevice op it is
// a temporary loom PreMulSum op made from the scalar's current value, and *temporary is set:
// destroy it once the call was issued (loom copies the op when it records the call).
ncclResult_t resolveOp(ncclComm* comm, int op, int datatype, loomRedOp_t* out, bool* temporary);

// The CUDA device current on this thread, or -1 when the process does not use CUDA.
int currentCudaDevice();
// True when p is CUDA device memory that the host cannot read: calls on it go to loom's GPU
// path with their stream.
bool isDeviceMemory(const void* p);
// A CUDA driver API function of the process's already-loaded libcuda.so.1; NULL when the
// process does not use CUDA.
void* cudaDriverSymbol(const char* name);

}  // namespace loom::nccl
