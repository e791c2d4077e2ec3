// The data path of ShmConnection: moving messages through the rings (see ring.h for the slot
// protocol and shm_transport.h for the FIFO / single-copy choice).
//
// Sender: sends_[sendCursor_..] are pushed in order, one slot per fragment or descriptor;
// sends_[0, sendCursor_) are fully in the ring and complete in order, FIFO ones at once and
// single-copy ones when the consumer has freed their descriptor slot.
// Receiver: the front receive takes slots in order; a descriptor slot stays unfreed until
// the whole message has been copied (copyChunkBytes per progress() call).
#include <cstring>

#include "transports/shm/shm_connection.h"

namespace loom::transport::shm {

ShmConnection::Mode ShmConnection::chooseMode(const SendOp& op) const {
  const ShmOptions& o = setup_.options;
  if (sameProcess_)
    return txDirect_ && o.directCopy && op.bytes >= o.directMinBytes ? Mode::kDirect : Mode::kData;
  if (!o.cma || op.bytes < o.cmaMinBytes) return Mode::kData;
  return txRing_.control()->consumerReadsCma.load(std::memory_order_relaxed) == 1 ? Mode::kCma
                                                                                  : Mode::kData;
}

void ShmConnection::fillSlot(SendOp* op, SlotHeader* slot) {
  if (op->mode == Mode::kUnset) op->mode = chooseMode(*op);
  slot->tag = op->tag;
  slot->totalBytes = op->bytes;
  switch (op->mode) {
    case Mode::kCma: {
      CmaDescriptor d{reinterpret_cast<uintptr_t>(op->data)};
      std::memcpy(Ring::payload(slot), &d, sizeof(d));
      slot->fragmentBytes = 0;
      slot->kind = static_cast<uint32_t>(SlotKind::kCma);
      op->pushed = op->bytes;
      return;
    }
    case Mode::kDirect:
      txDirect_->post(producer_.published(), op->data, op->bytes);
      slot->fragmentBytes = 0;
      slot->kind = static_cast<uint32_t>(SlotKind::kDirect);
      op->pushed = op->bytes;
      return;
    default: {
      uint64_t fragment = op->bytes - op->pushed;
      if (fragment > txRing_.geometry().slotBytes) fragment = txRing_.geometry().slotBytes;
      if (fragment != 0) std::memcpy(Ring::payload(slot), op->data + op->pushed, fragment);
      slot->fragmentBytes = static_cast<uint32_t>(fragment);
      slot->kind = static_cast<uint32_t>(SlotKind::kData);
      op->pushed += fragment;
      return;
    }
  }
}

Status ShmConnection::pumpSends(bool* moved, bool* rang) {
  // At most one ring's worth per call: the consumer may free slots as fast as we fill them.
  for (uint32_t budget = txRing_.geometry().slotCount; budget > 0 && sendCursor_ < sends_.size();
       --budget) {
    Result<SlotHeader*> acquired = producer_.acquire();
    if (!acquired.isOk()) return acquired.status().withContext(peerName());
    SlotHeader* slot = *acquired;
    if (slot == nullptr) break;
    SendOp& op = sends_[sendCursor_];
    fillSlot(&op, slot);
    uint64_t seq = producer_.publish(slot);
    *moved = *rang = true;
    if (op.pushed == op.bytes) {
      if (op.mode == Mode::kCma || op.mode == Mode::kDirect) op.ackAfter = seq + 1;
      ++sendCursor_;
    }
  }
  return completeSends(moved);
}

Status ShmConnection::completeSends(bool* moved) {
  while (sendCursor_ > 0) {
    const SendOp& op = sends_.front();
    if (op.mode == Mode::kDirect) {
      if (op.ackAfter > txDirect_->acked()) break;
    } else if (op.ackAfter > producer_.freedCached()) {
      Result<uint64_t> freed = producer_.refreshFreed();
      if (!freed.isOk()) return freed.status().withContext(peerName());
      if (op.ackAfter > *freed) break;
    }
    sends_.pop_front();
    --sendCursor_;
    ++sendsCompleted_;
    *moved = true;
  }
  return Status::ok();
}

Status ShmConnection::pumpRecvs(bool* moved, bool* rang, bool* selfWake) {
  for (uint32_t budget = rxRing_.geometry().slotCount; budget > 0 && !recvs_.empty(); --budget) {
    SlotView view;
    bool ready;
    Status peeked = consumer_.peek(&view, &ready);
    if (!peeked.isOk()) return peeked.withContext(peerName());
    if (!ready) break;
    RecvOp& op = recvs_.front();
    bool slotDone = false;
    uint64_t before = op.received;
    LOOM_RETURN_IF_ERROR(deliver(view, &op, &slotDone));
    if (op.received != before) *moved = true;
    if (!slotDone) {
      // A single-copy message continues in the next call. Nobody else will ring for it, so
      // ring ourselves: a driver about to sleep (armed) then wakes at once.
      *selfWake = true;
      break;
    }
    consumer_.release();
    *moved = *rang = true;
    if (op.received == op.bytes) {
      recvs_.pop_front();
      ++recvsCompleted_;
    }
  }
  return Status::ok();
}

Status ShmConnection::deliver(const SlotView& view, RecvOp* op, bool* slotDone) {
  if (view.tag != op->tag || view.totalBytes != op->bytes) return mismatch(view, *op);
  Mode mode;
  switch (static_cast<SlotKind>(view.kind)) {
    case SlotKind::kData:
      mode = Mode::kData;
      break;
    case SlotKind::kCma:
      mode = Mode::kCma;
      if (!readsCma_) return corrupted(view, "a CMA descriptor, but CMA was not agreed");
      break;
    case SlotKind::kDirect:
      mode = Mode::kDirect;
      if (!sameProcess_ || !rxDirect_)
        return corrupted(view, "a direct-copy descriptor, but the peer is another process");
      break;
    default:
      return corrupted(view, "unknown slot kind " + std::to_string(view.kind));
  }
  if (op->mode != Mode::kUnset && op->mode != mode)
    return corrupted(view, "a message that changes its transfer kind midway");
  op->mode = mode;
  if (mode != Mode::kData) {
    LOOM_RETURN_IF_ERROR(copySingle(view, mode, op));
    *slotDone = op->received == op->bytes;
    return Status::ok();
  }
  uint64_t left = op->bytes - op->received;
  uint32_t fragment = view.fragmentBytes;
  if (fragment > rxRing_.geometry().slotBytes || fragment > left || (fragment == 0 && left != 0))
    return corrupted(view, "a fragment of " + std::to_string(fragment) + " bytes with " +
                               std::to_string(left) + " bytes left in the message");
  if (fragment != 0) std::memcpy(op->data + op->received, Ring::payload(view.slot), fragment);
  op->received += fragment;
  *slotDone = true;
  return Status::ok();
}

Status ShmConnection::copySingle(const SlotView& view, Mode mode, RecvOp* op) {
  uint64_t chunk = op->bytes - op->received;
  if (chunk > setup_.options.copyChunkBytes) chunk = setup_.options.copyChunkBytes;
  if (chunk == 0) return Status::ok();
  uint8_t* dest = op->data + op->received;
  if (mode == Mode::kDirect) {
    std::lock_guard<std::mutex> lock(rxDirect_->copyMutex());
    if (rxDirect_->withdrawn())
      return remoteError(peerName() + " closed the connection with a message half-received (" +
                         std::to_string(op->received) + " of " + std::to_string(op->bytes) +
                         " bytes)");
    uint64_t bytes = 0;
    const void* source = rxDirect_->data(view.seq, &bytes);
    if (bytes != op->bytes || source == nullptr)
      return corrupted(view, "a direct-copy slot without a matching send");
    std::memcpy(dest, static_cast<const uint8_t*>(source) + op->received, chunk);
    op->received += chunk;
    if (op->received == op->bytes) rxDirect_->ack(view.seq);
    return Status::ok();
  }
  CmaDescriptor d;
  d.address = __atomic_load_n(&reinterpret_cast<CmaDescriptor*>(Ring::payload(view.slot))->address,
                              __ATOMIC_RELAXED);
  Result<size_t> n = cmaRead(peerPid_, d.address + op->received, dest, chunk);
  if (!n.isOk())
    return remoteError("reading " + std::to_string(chunk) + " bytes of a message from " +
                       peerName() + " failed (" + n.status().message() + ")");
  if (*n == 0) return remoteError("process_vm_readv from " + peerName() + " made no progress");
  op->received += *n;
  return Status::ok();
}

Status ShmConnection::mismatch(const SlotView& view, const RecvOp& op) const {
  return remoteError(peerName() + " sent a message of " + std::to_string(view.totalBytes) +
                     " bytes with tag " + std::to_string(view.tag) + " where receive #" +
                     std::to_string(recvsCompleted_) + " here expects " + std::to_string(op.bytes) +
                     " bytes with tag " + std::to_string(op.tag) +
                     " (mismatched operations on the two ranks?)");
}

Status ShmConnection::corrupted(const SlotView& view, const std::string& what) const {
  return remoteError("corrupted shared-memory ring from " + peerName() + ": slot " +
                     std::to_string(view.seq) + " holds " + what);
}

}  // namespace loom::transport::shm
