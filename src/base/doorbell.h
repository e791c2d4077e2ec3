// Doorbell: how a waiting rank sleeps and how its peers wake it, in one process or across
// processes, without a syscall on the fast path.
//
// The owner polls its work; when there is none for a while (LOOM_SPIN_US) it arms the doorbell
// (an acq_rel exchange that sets sleeping = 1), checks its work once more, and only then sleeps
// in poll() on the eventfd (plus whatever sockets it also waits on). A peer that publishes
// something the owner may wait for (data in a FIFO, a freed slot, with a release store) calls
// ring(): an acq_rel read-modify-write of the same flag, then a write to the eventfd only if the
// owner is armed. Both sides modify one location, so their operations are totally ordered: if
// the peer's RMW comes first, the owner's exchange synchronises with it and the owner's last
// check sees the published data; if the owner's exchange comes first, the peer reads 1 and
// writes the eventfd. No lost wakeup either way (and no fences, which ThreadSanitizer cannot
// reason about).
//
// The flag lives in a small memfd page so other processes can read it; the page and eventfd
// descriptors travel to peers over a Unix socket (transports/shm) or are shared directly in
// one process (DoorbellRef::local).
//
// Thread-safety: one owner thread arms/disarms at a time (the executor's driver); ring() may be
// called from any thread or process.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "base/fd.h"
#include "base/shm.h"
#include "base/status.h"

namespace loom {

struct DoorbellState {
  std::atomic<uint32_t> sleeping;
  uint32_t reserved;
  std::atomic<uint64_t> rings;  // wakeups sent (diagnostics)
};

class Doorbell {
 public:
  static Result<std::shared_ptr<Doorbell>> create();

  int eventFd() const { return event_.get(); }
  int memFd() const { return page_.fd(); }
  DoorbellState* state() const { return static_cast<DoorbellState*>(page_.data()); }

  // Owner side, see the header comment. disarm() also drains pending wakeups.
  void arm();
  void disarm();

 private:
  Doorbell() = default;
  UniqueFd event_;
  SharedMemory page_;
};

// A handle that rings someone's doorbell. Cheap to copy (shared ownership of what it needs).
class DoorbellRef {
 public:
  DoorbellRef() = default;
  // Same process: keeps the doorbell alive as long as the reference exists.
  static DoorbellRef local(std::shared_ptr<Doorbell> bell);
  // Another process: takes ownership of the received descriptors and maps the flag page.
  static Result<DoorbellRef> attach(UniqueFd eventFd, UniqueFd memFd);

  void ring() const;
  bool valid() const { return state_ != nullptr; }

 private:
  struct Remote {
    UniqueFd event;
    SharedMemory page;
  };
  std::shared_ptr<Doorbell> local_;
  std::shared_ptr<Remote> remote_;
  DoorbellState* state_ = nullptr;
  int eventFd_ = -1;
};

}  // namespace loom
