// Receiver-granted credit flow control for the ibverbs transport's eager rings.
//
// Each direction of a connection has a ring of `slots` fixed-size slots in the receiver's
// registered memory. The sender may RDMA-write a packet only into a slot it holds a credit for;
// it starts with one credit per slot. Packet n goes to slot n % slots, so the sequence number
// alone names the slot. The receiver consumes packets in order and hands the freed slots back
// as credits, piggybacked on a packet it sends the other way or explicitly (framing.h: a credit
// immediate that uses no slot) once half the ring is owed or the sender is out of credits. Neither
// side can over-grant: the receiver returns only what it consumed, and the sender refuses a return
// of more credits than it has outstanding (RemoteError: the peer is broken or is not a loom peer).
//
// Pure bookkeeping, no verbs calls. Thread-safety: none (the connection's driver thread).
#pragma once

#include <cstdint>

#include "base/status.h"

namespace loom::transport::ibverbs {

class CreditSender {
 public:
  explicit CreditSender(uint32_t slots);

  uint32_t slots() const { return slots_; }
  uint32_t available() const { return slots_ - static_cast<uint32_t>(sent_ - returned_); }
  bool canSend() const { return available() > 0; }
  uint64_t sent() const { return sent_; }

  // Uses one credit for the next packet: its sequence number (its slot is seq % slots).
  // Precondition: canSend().
  uint64_t take();
  // The peer freed `count` slots. RemoteError (naming the counts) for more than outstanding.
  Status onReturned(uint32_t count);

 private:
  uint32_t slots_;
  uint64_t sent_ = 0;
  uint64_t returned_ = 0;
};

class CreditReceiver {
 public:
  // Credits are returned explicitly once half the ring (at least one slot) is owed.
  explicit CreditReceiver(uint32_t slots);

  uint32_t slots() const { return slots_; }
  uint64_t arrived() const { return arrived_; }
  uint64_t consumed() const { return consumed_; }
  // Slot of the oldest arrived and unconsumed packet. Precondition: arrived() > consumed().
  uint32_t headSlot() const { return static_cast<uint32_t>(consumed_ % slots_); }

  // A packet arrived in `slot` with the low `seqBits` bits of its sequence number `seqLow`.
  // It must be the next one in order, in the slot it was granted, and the peer must have held
  // a credit for it; otherwise RemoteError naming expected and seen.
  Status onArrival(uint32_t slot, uint32_t seqLow, unsigned seqBits);
  // The oldest arrived packet is consumed (its slot may be written again).
  void consume();

  uint32_t pending() const { return pending_; }
  // True once half the ring is owed, or when the sender has no credit left at all (every slot
  // it was given is written) and some are owed: it can send nothing to piggyback them on, and
  // waiting for half the ring could wait forever.
  bool shouldReturnExplicitly() const {
    return pending_ > 0 && (pending_ >= threshold_ || senderStarved());
  }
  bool senderStarved() const { return arrived_ - (consumed_ - pending_) >= slots_; }
  // Credits to send back now; pending() becomes 0.
  uint32_t takePending();

 private:
  uint32_t slots_;
  uint32_t threshold_;
  uint64_t arrived_ = 0;
  uint64_t consumed_ = 0;
  uint32_t pending_ = 0;
};

}  // namespace loom::transport::ibverbs
