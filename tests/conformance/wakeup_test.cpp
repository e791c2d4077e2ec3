// Conformance: a driver that sleeps the way the runtime does (arm the doorbell, look once more,
// poll its eventfd plus addPollFds) is always woken by its peer: no lost wakeups, for receives
// and for sends that wait on the receiver. Many iterations, so a race would show up.
#include <algorithm>
#include <random>
#include <thread>

#include "harness.h"

namespace loom::transport::testing {
namespace {

class WakeupTest : public TransportTest {};

// Ping-pong with both ranks sleeping between progress calls. Each wait has its own deadline, so
// one lost wakeup fails the test as a Timeout rather than hanging it.
void sleepingPingPong(std::vector<std::unique_ptr<RankState>>& ranks,
                      const std::vector<size_t>& sizes, int iterations) {
  ConnectionPair p = connectPair(*ranks[0], *ranks[1], 0);
  size_t maxBytes = *std::max_element(sizes.begin(), sizes.end());
  Status st[2];
  auto run = [&](int r, Connection* c) {
    std::vector<uint8_t> buf(maxBytes), in(maxBytes);
    std::mt19937 jitter(r);
    Driven d{{c}, {ranks[r]->transport.get()}};
    for (int i = 0; i < iterations; ++i) {
      size_t bytes = sizes[i % sizes.size()];
      bool sender = (i % 2) == r;
      if (jitter() % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(jitter() % 200));
      if (sender) {
        buf[0] = static_cast<uint8_t>(i);
        st[r] = c->postSend(buf.data(), bytes, i);
      } else {
        st[r] = c->postRecv(in.data(), bytes, i);
      }
      if (!st[r].isOk()) return;
      st[r] = sleepUntil(
          d, *ranks[r]->doorbell, [&] { return completeAll(*c); }, Deadline::afterMs(5000));
      if (!st[r].isOk()) {
        st[r] = st[r].withContext("rank " + std::to_string(r) + " iteration " + std::to_string(i) +
                                  " (" + std::to_string(bytes) + " bytes)");
        return;
      }
      if (!sender && bytes > 0 && in[0] != static_cast<uint8_t>(i)) {
        st[r] = internalError("wrong payload at iteration " + std::to_string(i));
        return;
      }
    }
  };
  std::thread t0(run, 0, p.a.get());
  std::thread t1(run, 1, p.b.get());
  t0.join();
  t1.join();
  ASSERT_TRUE(st[0].isOk()) << st[0].toString();
  ASSERT_TRUE(st[1].isOk()) << st[1].toString();
}

TEST_P(WakeupTest, SleepingReceiverIsWokenBySmallMessages) {
  makeWorld();
  sleepingPingPong(ranks_, {0, 1, 64, 4096}, 4000);
}

TEST_P(WakeupTest, SleepingSenderIsWokenWhenTheReceiverDrains) {
  makeWorld();
  // Larger than the socket buffers, so the sender must sleep on POLLOUT / its doorbell.
  sleepingPingPong(ranks_, {16u << 20, 1, 3u << 20}, 30);
}

TEST_P(WakeupTest, SleepingDuringTheHandshakeIsWoken) {
  for (int round = 0; round < 20; ++round) {
    makeWorld();
    sleepingPingPong(ranks_, {8}, 2);
    if (HasFatalFailure()) return;
  }
}

LOOM_INSTANTIATE_FOR_ALL_TRANSPORTS(WakeupTest);

}  // namespace
}  // namespace loom::transport::testing
