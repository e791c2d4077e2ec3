#include "base/doorbell.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

namespace loom {

Result<std::shared_ptr<Doorbell>> Doorbell::create() {
  std::shared_ptr<Doorbell> d(new Doorbell());
  d->event_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!d->event_.valid()) return systemErrorFromErrno("eventfd", errno);
  LOOM_ASSIGN_OR_RETURN(d->page_, SharedMemory::create("loom-doorbell", 4096));
  new (d->page_.data()) DoorbellState{};
  return d;
}

void Doorbell::arm() {
  state()->sleeping.exchange(1, std::memory_order_acq_rel);
}

void Doorbell::disarm() {
  state()->sleeping.store(0, std::memory_order_relaxed);
  uint64_t drained;
  while (::read(event_.get(), &drained, sizeof(drained)) > 0) {
  }
}

DoorbellRef DoorbellRef::local(std::shared_ptr<Doorbell> bell) {
  DoorbellRef r;
  r.state_ = bell->state();
  r.eventFd_ = bell->eventFd();
  r.local_ = std::move(bell);
  return r;
}

Result<DoorbellRef> DoorbellRef::attach(UniqueFd eventFd, UniqueFd memFd) {
  auto remote = std::make_shared<Remote>();
  remote->event = std::move(eventFd);
  LOOM_ASSIGN_OR_RETURN(remote->page, SharedMemory::attach(std::move(memFd), 4096));
  remote->page.closeFd();
  DoorbellRef r;
  r.state_ = static_cast<DoorbellState*>(remote->page.data());
  r.eventFd_ = remote->event.get();
  r.remote_ = std::move(remote);
  return r;
}

void DoorbellRef::ring() const {
  if (state_->sleeping.fetch_add(0, std::memory_order_acq_rel) != 0) {
    state_->rings.fetch_add(1, std::memory_order_relaxed);
    uint64_t one = 1;
    // EAGAIN means the counter is saturated: the owner will wake anyway.
    [[maybe_unused]] ssize_t n = ::write(eventFd_, &one, sizeof(one));
  }
}

}  // namespace loom
