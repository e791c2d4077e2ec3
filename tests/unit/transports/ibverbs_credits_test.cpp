// Credit flow control of the ibverbs eager rings (transports/ibverbs/credits.h).
#include <gtest/gtest.h>

#include "transports/ibverbs/credits.h"
#include "transports/ibverbs/framing.h"

namespace loom::transport::ibverbs {
namespace {

TEST(CreditsTest, SenderStartsWithOneCreditPerSlotAndStopsWhenExhausted) {
  CreditSender s(4);
  for (uint64_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(s.canSend());
    EXPECT_EQ(s.take(), i);
  }
  EXPECT_FALSE(s.canSend());
  EXPECT_EQ(s.available(), 0u);
  EXPECT_TRUE(s.onReturned(1).isOk());
  EXPECT_TRUE(s.canSend());
  EXPECT_EQ(s.take() % 4, 0u);  // the freed slot is the oldest one
}

TEST(CreditsTest, SenderRefusesAnOverGrant) {
  CreditSender s(4);
  s.take();
  s.take();
  Status st = s.onReturned(3);
  EXPECT_EQ(st.code(), Code::kRemoteError);
  EXPECT_NE(st.message().find("over-grant"), std::string::npos) << st.toString();
  EXPECT_TRUE(s.onReturned(2).isOk());
  EXPECT_EQ(s.onReturned(1).code(), Code::kRemoteError);
  EXPECT_EQ(s.available(), 4u);
}

TEST(CreditsTest, ReceiverAcceptsPacketsInOrderAndReturnsWhatItConsumed) {
  CreditReceiver r(4);
  EXPECT_TRUE(r.onArrival(0, 0, kSeqBits).isOk());
  EXPECT_TRUE(r.onArrival(1, 1, kSeqBits).isOk());
  EXPECT_EQ(r.headSlot(), 0u);
  r.consume();
  EXPECT_EQ(r.pending(), 1u);
  EXPECT_FALSE(r.shouldReturnExplicitly());
  r.consume();
  EXPECT_TRUE(r.shouldReturnExplicitly());  // half of 4
  EXPECT_EQ(r.takePending(), 2u);
  EXPECT_EQ(r.pending(), 0u);
  EXPECT_EQ(r.takePending(), 0u);  // never granted twice
}

TEST(CreditsTest, ReceiverRejectsOutOfOrderOrWrongSlot) {
  CreditReceiver r(4);
  Status st = r.onArrival(0, 1, kSeqBits);
  EXPECT_EQ(st.code(), Code::kRemoteError);
  EXPECT_NE(st.message().find("expected sequence 0"), std::string::npos) << st.toString();
  EXPECT_EQ(r.onArrival(2, 0, kSeqBits).code(), Code::kRemoteError);
  EXPECT_TRUE(r.onArrival(0, 0, kSeqBits).isOk());
}

TEST(CreditsTest, ReceiverRejectsAPacketBeyondItsCredits) {
  CreditReceiver r(2);
  EXPECT_TRUE(r.onArrival(0, 0, kSeqBits).isOk());
  EXPECT_TRUE(r.onArrival(1, 1, kSeqBits).isOk());
  r.consume();  // freed, but the credit has not been sent back yet
  Status st = r.onArrival(0, 2, kSeqBits);
  EXPECT_EQ(st.code(), Code::kRemoteError);
  EXPECT_NE(st.message().find("without a credit"), std::string::npos) << st.toString();
  EXPECT_EQ(r.takePending(), 1u);
  EXPECT_TRUE(r.onArrival(0, 2, kSeqBits).isOk());
}

TEST(CreditsTest, StarvedSenderGetsCreditsBackBeforeHalfTheRingIsOwed) {
  CreditReceiver r(8);
  for (uint32_t i = 0; i < 8; ++i)
    ASSERT_TRUE(r.onArrival(i, i, kSeqBits).isOk());
  EXPECT_TRUE(r.senderStarved());
  EXPECT_FALSE(r.shouldReturnExplicitly());  // nothing freed yet
  r.consume();
  EXPECT_TRUE(r.shouldReturnExplicitly());  // 1 of 8 owed, but the sender has none
  EXPECT_EQ(r.takePending(), 1u);
  EXPECT_FALSE(r.senderStarved());
  EXPECT_TRUE(r.onArrival(0, 8, kSeqBits).isOk());
  r.consume();
  r.consume();
  EXPECT_TRUE(r.shouldReturnExplicitly());
}

TEST(CreditsTest, OneSlotRingReturnsEveryCreditExplicitly) {
  CreditReceiver r(1);
  EXPECT_TRUE(r.onArrival(0, 0, kSeqBits).isOk());
  r.consume();
  EXPECT_TRUE(r.shouldReturnExplicitly());
}

// A sender and a receiver run for several times 2^kSeqBits packets: the sequence bits in the
// immediate wrap around many times, slots cycle, and neither side ever sees an error, an
// over-grant or a packet without a credit.
TEST(CreditsTest, LongExchangeWrapsSequenceBitsWithoutErrors) {
  constexpr uint32_t kSlots = 16;
  CreditSender s(kSlots);
  CreditReceiver r(kSlots);
  const uint64_t total = 3 * (1ull << kSeqBits) + 12345;
  uint64_t delivered = 0;
  uint64_t step = 0;
  while (delivered < total) {
    // Send in bursts of varying length while credits last.
    const uint64_t burst = 1 + (step++ * 7) % kSlots;
    for (uint64_t i = 0; i < burst && s.canSend() && s.sent() < total; ++i) {
      const uint64_t seq = s.take();
      const uint32_t imm = packetImm(static_cast<uint32_t>(seq % kSlots), seq);
      Result<Imm> d = decodeImm(imm, kSlots, "rank 1");
      ASSERT_TRUE(d.isOk());
      ASSERT_TRUE(r.onArrival(d->slot, d->seqLow, kSeqBits).isOk()) << "at " << seq;
    }
    // Consume some, return credits when due (piggyback every third round).
    while (r.consumed() < r.arrived() && (r.consumed() + step) % 5 != 0) {
      r.consume();
      ++delivered;
    }
    if (r.shouldReturnExplicitly() || step % 3 == 0 || !s.canSend()) {
      const uint32_t n = r.takePending();
      ASSERT_TRUE(s.onReturned(n).isOk());
    }
    ASSERT_LE(s.sent() - delivered, kSlots);
  }
  EXPECT_EQ(delivered, total);
  EXPECT_GT(s.sent(), 3 * (1ull << kSeqBits));
}

}  // namespace
}  // namespace loom::transport::ibverbs
