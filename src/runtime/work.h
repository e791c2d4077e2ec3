// WorkState: completion of asynchronous work (one or more communicators' units).
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <condition_variable>
#include <mutex>

#include "base/status.h"
#include "base/time.h"

namespace loom::runtime {

class WorkState {
 public:
  explicit WorkState(int parts) : remaining_(parts) {}

  // One part finished; the first error is kept.
  void complete(const Status& status) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!status.isOk() && status_.isOk()) status_ = status;
    if (--remaining_ == 0) cv_.notify_all();
  }
  // Waits until all parts finish or the deadline; Timeout leaves the work pending.
  Status wait(Deadline deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    while (remaining_ > 0) {
      if (deadline.expired()) return timeoutError("work still running after the wait's deadline");
      cv_.wait_for(lock, std::chrono::milliseconds(std::min(deadline.remainingMs(), 100)));
    }
    return status_;
  }
  bool test(Status* status) {
    std::lock_guard<std::mutex> lock(mu_);
    if (remaining_ > 0) return false;
    *status = status_;
    return true;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int remaining_;
  Status status_;
};

}  // namespace loom::runtime
