#include "transports/ibverbs/credits.h"

#include <string>

#include "base/assert.h"

namespace loom::transport::ibverbs {

CreditSender::CreditSender(uint32_t slots) : slots_(slots) {
  LOOM_CHECK(slots_ > 0, "a credit ring needs at least one slot");
}

uint64_t CreditSender::take() {
  LOOM_CHECK(canSend(), "CreditSender::take without a credit");
  return sent_++;
}

Status CreditSender::onReturned(uint32_t count) {
  const uint64_t outstanding = sent_ - returned_;
  if (count > outstanding)
    return remoteError("peer returned " + std::to_string(count) + " credits but only " +
                       std::to_string(outstanding) + " are outstanding (over-grant)");
  returned_ += count;
  return Status::ok();
}

CreditReceiver::CreditReceiver(uint32_t slots) : slots_(slots), threshold_(slots / 2) {
  LOOM_CHECK(slots_ > 0, "a credit ring needs at least one slot");
  if (threshold_ == 0) threshold_ = 1;
}

Status CreditReceiver::onArrival(uint32_t slot, uint32_t seqLow, unsigned seqBits) {
  const uint64_t mask = seqBits >= 64 ? ~0ull : (1ull << seqBits) - 1;
  const uint32_t expectedSlot = static_cast<uint32_t>(arrived_ % slots_);
  if ((seqLow & mask) != (arrived_ & mask) || slot != expectedSlot)
    return remoteError("packet out of order: expected sequence " + std::to_string(arrived_ & mask) +
                       " in slot " + std::to_string(expectedSlot) + ", got sequence " +
                       std::to_string(seqLow & mask) + " in slot " + std::to_string(slot));
  // The sender holds credits only for slots handed back: consumed - pending of them.
  if (senderStarved())
    return remoteError("packet without a credit: all " + std::to_string(slots_) +
                       " slots of the ring are still held (" + std::to_string(pending_) +
                       " freed but not yet returned)");
  ++arrived_;
  return Status::ok();
}

void CreditReceiver::consume() {
  LOOM_CHECK(consumed_ < arrived_, "CreditReceiver::consume with nothing arrived");
  ++consumed_;
  ++pending_;
}

uint32_t CreditReceiver::takePending() {
  const uint32_t n = pending_;
  pending_ = 0;
  return n;
}

}  // namespace loom::transport::ibverbs
