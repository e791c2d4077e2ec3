#include "transports/shm/ring.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <new>
#include <string>

namespace loom::transport::shm {

namespace {

bool isPowerOfTwo(uint32_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

}  // namespace

Status RingGeometry::validate(bool fromPeer) const {
  if (isPowerOfTwo(slotBytes) && slotBytes >= kMinSlotBytes && slotBytes <= kMaxSlotBytes &&
      isPowerOfTwo(slotCount) && slotCount >= kMinSlotCount && slotCount <= kMaxSlotCount)
    return Status::ok();
  std::string what = "shared-memory ring geometry " + std::to_string(slotCount) + " slots x " +
                     std::to_string(slotBytes) + " bytes (need powers of two, " +
                     std::to_string(kMinSlotCount) + ".." + std::to_string(kMaxSlotCount) +
                     " slots of " + std::to_string(kMinSlotBytes) + ".." +
                     std::to_string(kMaxSlotBytes) + " bytes)";
  return fromPeer ? remoteError("peer offered " + what) : invalidArgument("invalid " + what);
}

Result<Ring> Ring::create(RingGeometry geometry) {
  LOOM_RETURN_IF_ERROR(geometry.validate(false));
  Ring ring;
  LOOM_ASSIGN_OR_RETURN(ring.memory_,
                        SharedMemory::create("loom-shm-ring", geometry.mappingBytes()));
  ring.geometry_ = geometry;
  new (ring.memory_.data()) RingControl{};
  return ring;
}

Result<Ring> Ring::attach(UniqueFd fd, RingGeometry geometry) {
  LOOM_RETURN_IF_ERROR(geometry.validate(true));
  Ring ring;  // SharedMemory::attach checks the descriptor is sealed against shrinking
  LOOM_ASSIGN_OR_RETURN(ring.memory_, SharedMemory::attach(std::move(fd), geometry.mappingBytes()));
  ring.memory_.closeFd();
  ring.geometry_ = geometry;
  return ring;
}

Result<SlotHeader*> RingProducer::acquire() {
  uint32_t count = ring_->geometry().slotCount;
  if (next_ - freed_ >= count) {
    LOOM_RETURN_IF_ERROR(refreshFreed().status());
    if (next_ - freed_ >= count) return static_cast<SlotHeader*>(nullptr);
  }
  return ring_->slot(next_);
}

Result<uint64_t> RingProducer::refreshFreed() {
  uint64_t tail = ring_->control()->tail.load(std::memory_order_acquire);
  if (tail < freed_ || tail > next_)
    return remoteError("corrupted shared-memory ring: consumer freed " + std::to_string(tail) +
                       " slots, expected " + std::to_string(freed_) + ".." + std::to_string(next_));
  freed_ = tail;
  return tail;
}

Status RingConsumer::peek(SlotView* view, bool* ready) {
  SlotHeader* slot = ring_->slot(next_);
  uint64_t seq = slot->seq.load(std::memory_order_acquire);
  if (seq != next_ + 1) {
    *ready = false;
    uint64_t count = ring_->geometry().slotCount;
    uint64_t previousLap = next_ >= count ? next_ + 1 - count : 0;
    if (seq == previousLap) return Status::ok();
    return remoteError("corrupted shared-memory ring: slot sequence " + std::to_string(seq) +
                       ", expected " + std::to_string(next_ + 1) + " or " +
                       std::to_string(previousLap));
  }
  // Each field is read exactly once (a relaxed atomic load, so the compiler may not re-read
  // it later): the checks made on this copy stay true however the mapping changes.
  view->seq = next_;
  view->tag = __atomic_load_n(&slot->tag, __ATOMIC_RELAXED);
  view->totalBytes = __atomic_load_n(&slot->totalBytes, __ATOMIC_RELAXED);
  view->fragmentBytes = __atomic_load_n(&slot->fragmentBytes, __ATOMIC_RELAXED);
  view->kind = __atomic_load_n(&slot->kind, __ATOMIC_RELAXED);
  view->slot = slot;
  *ready = true;
  return Status::ok();
}

}  // namespace loom::transport::shm
