#include "base/doorbell.h"
#include "base/time.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <thread>

namespace loom {
namespace {

// The sleep protocol of doorbell.h, exercised many times: a producer publishes a counter and
// rings; the consumer arms, re-checks, and sleeps. A lost wakeup would hang past the deadline.
TEST(DoorbellTest, NoLostWakeups) {
  Result<std::shared_ptr<Doorbell>> bell = Doorbell::create();
  ASSERT_TRUE(bell.isOk());
  DoorbellRef ref = DoorbellRef::local(*bell);
  std::atomic<int> published{0}, acked{0};
  constexpr int kRounds = 20000;
  std::thread producer([&] {
    for (int i = 1; i <= kRounds; ++i) {
      published.store(i, std::memory_order_release);
      ref.ring();
      // Ping-pong: the consumer has nothing to do until the next value, so it keeps going to
      // sleep, which is the interleaving that could lose a wakeup.
      while (acked.load(std::memory_order_acquire) < i)
        std::this_thread::yield();
    }
  });
  int seen = 0;
  int64_t deadline = nowNs() + 60ll * 1000000000;
  while (seen < kRounds) {
    ASSERT_LT(nowNs(), deadline) << "lost wakeup at " << seen;
    int v = published.load(std::memory_order_acquire);
    if (v > seen) {
      seen = v;
      acked.store(v, std::memory_order_release);
      continue;
    }
    (*bell)->arm();
    if (published.load(std::memory_order_acquire) == seen) {
      pollfd p{(*bell)->eventFd(), POLLIN, 0};
      ::poll(&p, 1, 1000);
    }
    (*bell)->disarm();
  }
  producer.join();
}

TEST(DoorbellTest, RingWithoutSleeperIsFree) {
  Result<std::shared_ptr<Doorbell>> bell = Doorbell::create();
  ASSERT_TRUE(bell.isOk());
  DoorbellRef ref = DoorbellRef::local(*bell);
  for (int i = 0; i < 1000; ++i)
    ref.ring();
  EXPECT_EQ((*bell)->state()->rings.load(), 0u);
}

}  // namespace
}  // namespace loom
