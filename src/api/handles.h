// The C ABI's handle types and the registry that tells a live communicator from a destroyed
// one (so a stale handle is InvalidArgument, not a crash).
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "base/dtype.h"
#include "loom/loom.h"
#include "runtime/communicator.h"
#include "runtime/work.h"

struct loomComm {
  static constexpr uint64_t kMagic = 0x6c6f6f6d636f6d6dull;  // "loomcomm"
  uint64_t magic = kMagic;
  std::unique_ptr<loom::runtime::Communicator> comm;
  std::atomic<int> activeCalls{0};
  // PreMulSum operators created on this communicator: value - loomNumOps -> op.
  std::mutex opsMu;
  std::map<int, loom::RedOp> preMulOps;
  std::map<int, loom::DataType> preMulTypes;
  int nextOp = 0;
};

struct loomWork {
  std::shared_ptr<loom::runtime::WorkState> state;
};

namespace loom::api {

// Registry of live communicators.
void registerComm(loomComm* c);
void unregisterComm(loomComm* c);
bool isLive(const loomComm* c);

// Keeps a communicator from being freed by a concurrent abort while a call uses it.
class CallScope {
 public:
  explicit CallScope(loomComm* c) : c_(c) { c_->activeCalls.fetch_add(1); }
  ~CallScope() { c_->activeCalls.fetch_sub(1); }
  CallScope(const CallScope&) = delete;
  CallScope& operator=(const CallScope&) = delete;

 private:
  loomComm* c_;
};

}  // namespace loom::api
