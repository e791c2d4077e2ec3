// loom.hpp - the C++ API: small RAII handles over the C ABI (loom.h), header-only, so the
// library's binary interface stays C and any C++ compiler can use it.
//
//   loom::Communicator comm;
//   loom::Status s = loom::Communicator::initEnv(&comm);        // under loomrun/mpirun/...
//   std::vector<float> grad(n);
//   s = comm.allReduce(grad.data(), grad.data(), n, loomSum);   // in place, blocking
//   loom::Work w = comm.allReduceAsync(a, b, n, loomSum);       // on the progress thread
//   s = w.wait();
//
// Every method returns a Status (never throws). Thread-safety: as the C ABI — one thread
// issues operations on a communicator at a time; abort() may be called from any thread.
#ifndef LOOM_LOOM_HPP_
#define LOOM_LOOM_HPP_

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "loom/loom.h"

namespace loom {

class Status {
 public:
  Status() = default;
  Status(loomResult_t code, std::string message) : code_(code), message_(std::move(message)) {}
  // Captures the calling thread's last error message for a failed code.
  static Status fromResult(loomResult_t code) {
    if (code == loomSuccess) return Status();
    return Status(code, loomGetLastError(nullptr));
  }
  bool ok() const { return code_ == loomSuccess; }
  explicit operator bool() const { return ok(); }
  loomResult_t code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  loomResult_t code_ = loomSuccess;
  std::string message_;
};

// The loomDataType_t of a C++ element type.
template <typename T>
constexpr loomDataType_t dataTypeOf() {
  if constexpr (std::is_same_v<T, int8_t>)
    return loomInt8;
  else if constexpr (std::is_same_v<T, uint8_t>)
    return loomUint8;
  else if constexpr (std::is_same_v<T, int32_t>)
    return loomInt32;
  else if constexpr (std::is_same_v<T, uint32_t>)
    return loomUint32;
  else if constexpr (std::is_same_v<T, int64_t>)
    return loomInt64;
  else if constexpr (std::is_same_v<T, uint64_t>)
    return loomUint64;
  else if constexpr (std::is_same_v<T, float>)
    return loomFloat32;
  else if constexpr (std::is_same_v<T, double>)
    return loomFloat64;
  else
    static_assert(sizeof(T) == 0, "no loomDataType_t for this type; use the void* overloads");
}

// Completion of asynchronous operations. Move-only; the destructor waits and frees.
class Work {
 public:
  Work() = default;
  explicit Work(loomWork_t w, Status issued = Status()) : w_(w), issued_(std::move(issued)) {}
  Work(Work&& o) noexcept : w_(std::exchange(o.w_, nullptr)), issued_(std::move(o.issued_)) {}
  Work& operator=(Work&& o) noexcept {
    if (this != &o) {
      reset();
      w_ = std::exchange(o.w_, nullptr);
      issued_ = std::move(o.issued_);
    }
    return *this;
  }
  ~Work() { reset(); }

  // timeoutMs < 0: until done (operations are bounded by their communicator's timeout).
  Status wait(int64_t timeoutMs = -1) {
    if (!w_) return issued_;
    return Status::fromResult(loomWorkWait(w_, timeoutMs));
  }
  bool test(Status* result = nullptr) {
    if (!w_) {
      if (result) *result = issued_;
      return true;
    }
    int done = 0;
    Status s = Status::fromResult(loomWorkTest(w_, &done));
    if (result) *result = s;
    return done != 0 || !s.ok();
  }

 private:
  void reset() {
    if (w_) loomWorkFree(w_);
    w_ = nullptr;
  }
  loomWork_t w_ = nullptr;
  Status issued_;  // an error raised while issuing (then there is no handle)
};

class Communicator {
 public:
  Communicator() = default;
  explicit Communicator(loomComm_t c) : c_(c) {}
  Communicator(Communicator&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
  Communicator& operator=(Communicator&& o) noexcept {
    if (this != &o) {
      destroy();
      c_ = std::exchange(o.c_, nullptr);
    }
    return *this;
  }
  ~Communicator() { destroy(); }

  static Status uniqueId(loomUniqueId* id) { return Status::fromResult(loomGetUniqueId(id)); }
  static Status initRank(int nranks, const loomUniqueId& id, int rank, Communicator* out,
                         loomConfig_t* config = nullptr) {
    loomComm_t c = nullptr;
    Status s = Status::fromResult(loomCommInitRankConfig(&c, nranks, id, rank, config));
    if (s.ok()) *out = Communicator(c);
    return s;
  }
  static Status initEnv(Communicator* out, loomConfig_t* config = nullptr) {
    loomComm_t c = nullptr;
    Status s = Status::fromResult(loomCommInitEnv(&c, config));
    if (s.ok()) *out = Communicator(c);
    return s;
  }
  static Status initAll(int nranks, std::vector<Communicator>* out,
                        loomConfig_t* config = nullptr) {
    std::vector<loomComm_t> cs(static_cast<size_t>(nranks > 0 ? nranks : 0));
    Status s = Status::fromResult(loomCommInitAll(cs.data(), nranks, nullptr, config));
    if (!s.ok()) return s;
    out->clear();
    for (loomComm_t c : cs)
      out->emplace_back(c);
    return s;
  }

  bool valid() const { return c_ != nullptr; }
  loomComm_t handle() const { return c_; }
  int rank() const {
    int r = -1;
    loomCommUserRank(c_, &r);
    return r;
  }
  int size() const {
    int n = 0;
    loomCommCount(c_, &n);
    return n;
  }
  // NOCOLOR (LOOM_SPLIT_NOCOLOR) leaves *out invalid.
  Status split(int color, int key, Communicator* out, loomConfig_t* config = nullptr) {
    loomComm_t c = nullptr;
    Status s = Status::fromResult(loomCommSplit(c_, color, key, &c, config));
    if (s.ok()) *out = Communicator(c);
    return s;
  }
  Status asyncError() const {
    loomResult_t r = loomSuccess;
    Status s = Status::fromResult(loomCommGetAsyncError(c_, &r));
    return s.ok() ? Status::fromResult(r) : s;
  }
  loomCounters_t counters() const {
    loomCounters_t c{};
    loomCommGetCounters(c_, &c);
    return c;
  }
  Status abort() {
    Status s = Status::fromResult(loomCommAbort(c_));
    c_ = nullptr;
    return s;
  }
  Status destroy() {
    if (!c_) return Status();
    Status s = Status::fromResult(loomCommDestroy(c_));
    c_ = nullptr;
    return s;
  }

  // ---- collectives: void* forms take a datatype, typed forms deduce it ----
  Status allReduce(const void* s, void* r, size_t n, loomDataType_t t, loomRedOp_t op) {
    return Status::fromResult(loomAllReduce(s, r, n, t, op, c_, nullptr));
  }
  Status broadcast(const void* s, void* r, size_t n, loomDataType_t t, int root) {
    return Status::fromResult(loomBroadcast(s, r, n, t, root, c_, nullptr));
  }
  Status reduce(const void* s, void* r, size_t n, loomDataType_t t, loomRedOp_t op, int root) {
    return Status::fromResult(loomReduce(s, r, n, t, op, root, c_, nullptr));
  }
  Status allGather(const void* s, void* r, size_t n, loomDataType_t t) {
    return Status::fromResult(loomAllGather(s, r, n, t, c_, nullptr));
  }
  Status reduceScatter(const void* s, void* r, size_t n, loomDataType_t t, loomRedOp_t op) {
    return Status::fromResult(loomReduceScatter(s, r, n, t, op, c_, nullptr));
  }
  Status allToAll(const void* s, void* r, size_t n, loomDataType_t t) {
    return Status::fromResult(loomAllToAll(s, r, n, t, c_, nullptr));
  }
  Status gather(const void* s, void* r, size_t n, loomDataType_t t, int root) {
    return Status::fromResult(loomGather(s, r, n, t, root, c_, nullptr));
  }
  Status scatter(const void* s, void* r, size_t n, loomDataType_t t, int root) {
    return Status::fromResult(loomScatter(s, r, n, t, root, c_, nullptr));
  }
  Status send(const void* s, size_t n, loomDataType_t t, int peer) {
    return Status::fromResult(loomSend(s, n, t, peer, c_, nullptr));
  }
  Status recv(void* r, size_t n, loomDataType_t t, int peer) {
    return Status::fromResult(loomRecv(r, n, t, peer, c_, nullptr));
  }
  Status barrier() { return Status::fromResult(loomBarrier(c_, nullptr)); }

  template <typename T>
  Status allReduce(const T* s, T* r, size_t n, loomRedOp_t op = loomSum) {
    return allReduce(s, r, n, dataTypeOf<T>(), op);
  }
  template <typename T>
  Status broadcast(const T* s, T* r, size_t n, int root) {
    return broadcast(s, r, n, dataTypeOf<T>(), root);
  }
  template <typename T>
  Status allGather(const T* s, T* r, size_t n) {
    return allGather(s, r, n, dataTypeOf<T>());
  }
  template <typename T>
  Status reduceScatter(const T* s, T* r, size_t n, loomRedOp_t op = loomSum) {
    return reduceScatter(s, r, n, dataTypeOf<T>(), op);
  }
  template <typename T>
  Status allToAll(const T* s, T* r, size_t n) {
    return allToAll(s, r, n, dataTypeOf<T>());
  }

  // Asynchronous forms: the operation runs on the communicator's progress thread.
  Work allReduceAsync(const void* s, void* r, size_t n, loomDataType_t t, loomRedOp_t op) {
    return async([&] { return loomAllReduce(s, r, n, t, op, c_, nullptr); });
  }
  Work broadcastAsync(const void* s, void* r, size_t n, loomDataType_t t, int root) {
    return async([&] { return loomBroadcast(s, r, n, t, root, c_, nullptr); });
  }
  Work allGatherAsync(const void* s, void* r, size_t n, loomDataType_t t) {
    return async([&] { return loomAllGather(s, r, n, t, c_, nullptr); });
  }
  Work reduceScatterAsync(const void* s, void* r, size_t n, loomDataType_t t, loomRedOp_t op) {
    return async([&] { return loomReduceScatter(s, r, n, t, op, c_, nullptr); });
  }
  Work allToAllAsync(const void* s, void* r, size_t n, loomDataType_t t) {
    return async([&] { return loomAllToAll(s, r, n, t, c_, nullptr); });
  }
  // Any set of calls (on any communicators) as one asynchronous unit.
  template <typename F>
  Work async(F&& issue) {
    loomGroupStart();
    loomResult_t r = issue();
    if (r != loomSuccess) {
      Status s = Status::fromResult(r);
      loomGroupEnd();
      return Work(nullptr, s);
    }
    loomWork_t w = nullptr;
    Status s = Status::fromResult(loomGroupEndAsync(&w));
    return Work(w, s);
  }

 private:
  loomComm_t c_ = nullptr;
};

}  // namespace loom

#endif  // LOOM_LOOM_HPP_
