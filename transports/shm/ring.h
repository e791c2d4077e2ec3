// One direction of a shared-memory connection: a single-producer/single-consumer ring of
// fixed-size slots in a sealed memfd.
//
// Layout of the mapping (created by the consumer, mapped by the producer):
//   [RingControl, 4 KiB][slot 0][slot 1]...[slot N-1]
//   slot = [SlotHeader, 32 B][payload, slotBytes][32 B pad]   (stride slotBytes + 64)
//
// Protocol. The producer fills slot (seq mod N) -- header fields, then payload -- and publishes
// it by storing seq + 1 into the header's `seq` word with release order. The consumer polls
// that word of the slot it expects next (acquire), so the one cache line it spins on is the
// one the data arrives in: an 8-byte message is a single line transfer. The consumer frees
// slots in order by storing the count of freed slots into RingControl::tail (release); the
// producer reads it only when its cached copy says the ring is full or it waits for an ack.
// The payload starts 32 bytes into the slot so that small messages share the header's line.
//
// Hardening. Everything in the mapping may be garbage (a buggy or hostile peer): geometry comes
// from the handshake, never from the mapping; every counter read from it is range-checked; the
// consumer copies a header to a local SlotView once and validates that copy. A check that fails
// is a RemoteError, never a crash. The memfd is sealed against shrinking, so a peer cannot
// make our accesses fault with SIGBUS.
//
// Thread-safety: one producer and one consumer (each in its own thread or process); a
// RingProducer / RingConsumer is used by one thread at a time.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "base/fd.h"
#include "base/shm.h"
#include "base/status.h"

namespace loom::transport::shm {

inline constexpr size_t kCacheLineBytes = 64;
// Adjacent-line prefetchers pull cache lines in pairs: counters written by different sides are
// kept 128 bytes apart to avoid false sharing.
inline constexpr size_t kCounterSpacingBytes = 128;
inline constexpr size_t kControlBytes = 4096;
inline constexpr size_t kSlotHeaderBytes = 32;
inline constexpr size_t kSlotOverheadBytes = 64;  // header + pad, keeps slots line-aligned

// Bounds for geometry offered by a peer (a hostile value must not make us map gigabytes).
inline constexpr uint32_t kMinSlotBytes = 4096;
inline constexpr uint32_t kMaxSlotBytes = 4u << 20;
inline constexpr uint32_t kMinSlotCount = 2;
inline constexpr uint32_t kMaxSlotCount = 256;

enum class SlotKind : uint32_t {
  kData = 1,    // payload holds fragmentBytes of the message
  kCma = 2,     // payload holds a CmaDescriptor; the consumer reads the sender's memory
  kDirect = 3,  // same process: the address sits in the sender's private DirectTable
};

struct SlotHeader {
  std::atomic<uint64_t> seq;  // sequence number + 1 of the slot's content; 0 = never used
  uint64_t tag;
  uint64_t totalBytes;     // size of the whole message
  uint32_t fragmentBytes;  // kData: payload bytes in this slot
  uint32_t kind;           // SlotKind
};
static_assert(sizeof(SlotHeader) == kSlotHeaderBytes);

struct CmaDescriptor {
  uint64_t address;  // the sender's buffer, in the sender's address space
};

struct RingControl {
  alignas(kCounterSpacingBytes) std::atomic<uint64_t> tail;  // consumer: slots freed
  // consumer: 1 once it proved it can read the producer's memory with process_vm_readv.
  alignas(kCounterSpacingBytes) std::atomic<uint32_t> consumerReadsCma;
  // consumer: 0 while open; n + 1 once it is closing and will consume only the messages of
  // its first n receives (the producer then fails sends beyond them instead of waiting).
  std::atomic<uint64_t> consumerClosing;
};
static_assert(sizeof(RingControl) <= kControlBytes);

struct RingGeometry {
  uint32_t slotBytes = 0;  // payload capacity of one slot; a power of two
  uint32_t slotCount = 0;  // a power of two

  size_t strideBytes() const { return size_t{slotBytes} + kSlotOverheadBytes; }
  size_t mappingBytes() const { return kControlBytes + strideBytes() * slotCount; }
  // InvalidArgument (RemoteError when `fromPeer`) for values outside the bounds above.
  Status validate(bool fromPeer) const;
};

// The shared mapping of one ring.
class Ring {
 public:
  Ring() = default;
  // Consumer side: a new zeroed, sealed memfd mapping.
  static Result<Ring> create(RingGeometry geometry);
  // Producer side: maps the consumer's descriptor after checking that it is a memfd sealed
  // against shrinking and large enough for `geometry`.
  static Result<Ring> attach(UniqueFd fd, RingGeometry geometry);

  const RingGeometry& geometry() const { return geometry_; }
  int fd() const { return memory_.fd(); }
  void closeFd() { memory_.closeFd(); }
  bool mapped() const { return memory_.data() != nullptr; }
  RingControl* control() const { return static_cast<RingControl*>(memory_.data()); }
  SlotHeader* slot(uint64_t seq) const {
    auto* base = static_cast<uint8_t*>(memory_.data()) + kControlBytes;
    return reinterpret_cast<SlotHeader*>(base + (seq & (geometry_.slotCount - 1)) *
                                                    geometry_.strideBytes());
  }
  static uint8_t* payload(SlotHeader* slot) {
    return reinterpret_cast<uint8_t*>(slot) + kSlotHeaderBytes;
  }
  // For tests: the raw mapping.
  void* base() const { return memory_.data(); }

 private:
  SharedMemory memory_;
  RingGeometry geometry_;
};

// Producer view. Sequence numbers count slots published since the ring was created.
class RingProducer {
 public:
  RingProducer() = default;
  explicit RingProducer(Ring* ring) : ring_(ring) {}

  // The next slot to fill, nullptr while the ring is full. RemoteError if the consumer's tail
  // counter is out of range.
  Result<SlotHeader*> acquire();
  // Publishes the slot returned by acquire(); returns its sequence number.
  uint64_t publish(SlotHeader* slot) {
    uint64_t seq = next_++;
    slot->seq.store(seq + 1, std::memory_order_release);
    return seq;
  }
  uint64_t published() const { return next_; }
  // Slots the consumer has freed (validated); all slots with seq < freed() are done.
  Result<uint64_t> refreshFreed();
  uint64_t freedCached() const { return freed_; }

 private:
  Ring* ring_ = nullptr;
  uint64_t next_ = 0;
  uint64_t freed_ = 0;
};

// What the consumer saw in one slot: a private copy, validated before any use.
struct SlotView {
  uint64_t seq;
  uint64_t tag;
  uint64_t totalBytes;
  uint32_t fragmentBytes;
  uint32_t kind;
  SlotHeader* slot;
};

class RingConsumer {
 public:
  RingConsumer() = default;
  explicit RingConsumer(Ring* ring) : ring_(ring) {}

  // The next published slot (false while there is none). RemoteError if its sequence word is
  // neither the expected one nor a previous lap's.
  Status peek(SlotView* view, bool* ready);
  // Frees the slot returned by the last successful peek.
  void release() { ring_->control()->tail.store(++next_, std::memory_order_release); }
  uint64_t consumed() const { return next_; }

 private:
  Ring* ring_ = nullptr;
  uint64_t next_ = 0;
};

}  // namespace loom::transport::shm
