// Abort: from another thread, from a signal handler (the async-signal-safe path a watchdog
// uses), and its effect on split. Every pending operation must end promptly with loomAborted,
// without waiting for peers.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/time.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "fault_util.h"

namespace loom::test {
namespace {

// Long enough that nothing here ends by timeout: an abort must end it.
constexpr int kTimeoutMs = 60000;
constexpr double kPromptSec = 5.0;

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(AbortTest, AbortFromAnotherThreadUnblocksAPendingCollective) {
  std::vector<loomComm_t> comms = initAll("socket", 2, kTimeoutMs);
  ASSERT_FALSE(comms.empty());
  std::atomic<bool> started{false};
  std::chrono::steady_clock::time_point abortedAt;
  std::thread watchdog([&] {
    while (!started.load())
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    abortedAt = std::chrono::steady_clock::now();
    EXPECT_EQ(loomCommAbort(comms[0]), loomSuccess);
  });
  // Rank 1 never joins: rank 0 waits for it until aborted.
  std::vector<float> x(1000, 1.0f);
  started.store(true);
  loomResult_t r =
      loomAllReduce(x.data(), x.data(), x.size(), loomFloat32, loomSum, comms[0], nullptr);
  const double afterAbort = since(abortedAt);
  watchdog.join();
  EXPECT_EQ(r, loomAborted);
  EXPECT_LT(afterAbort, kPromptSec);
  std::printf("[measured] abort from another thread -> %s %.3f s after the abort\n",
              loomGetErrorString(r), afterAbort);
  EXPECT_EQ(loomCommDestroy(comms[1]), loomSuccess);
}

std::atomic<loomComm_t> gVictim{nullptr};

void onAlarm(int) {
  loomComm_t c = gVictim.load();
  if (c) loomCommAbortSignalSafe(c);
}

// A watchdog's SIGALRM handler aborts a communicator that is stuck waiting for a peer.
TEST(AbortTest, SignalSafeAbortFromASignalHandlerUnblocksACollective) {
  std::vector<loomComm_t> comms = initAll("shm", 2, kTimeoutMs);
  ASSERT_FALSE(comms.empty());
  struct sigaction sa {};
  sa.sa_handler = onAlarm;
  sigemptyset(&sa.sa_mask);
  struct sigaction old {};
  ASSERT_EQ(sigaction(SIGALRM, &sa, &old), 0);
  gVictim.store(comms[0]);
  itimerval t{};
  t.it_value.tv_usec = 200000;
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(setitimer(ITIMER_REAL, &t, nullptr), 0);
  std::vector<float> x(1000, 1.0f);
  loomResult_t r =
      loomAllReduce(x.data(), x.data(), x.size(), loomFloat32, loomSum, comms[0], nullptr);
  const double took = since(t0);
  sigaction(SIGALRM, &old, nullptr);
  gVictim.store(nullptr);
  EXPECT_EQ(r, loomAborted) << loomGetLastError(comms[0]);
  EXPECT_LT(took, 0.2 + kPromptSec);
  std::printf("[measured] signal-safe abort -> %s after %.3f s (alarm at 0.200 s)\n",
              loomGetErrorString(r), took);
  // Sticky, and a split of the aborted communicator fails cleanly.
  loomResult_t async = loomSuccess;
  EXPECT_EQ(loomCommGetAsyncError(comms[0], &async), loomSuccess);
  EXPECT_EQ(async, loomAborted);
  EXPECT_EQ(loomAllReduce(x.data(), x.data(), 1, loomFloat32, loomSum, comms[0], nullptr),
            loomAborted);
  loomComm_t sub = nullptr;
  EXPECT_EQ(loomCommSplit(comms[0], 0, 0, &sub, nullptr), loomAborted);
  EXPECT_EQ(sub, nullptr);
  EXPECT_EQ(loomCommAbort(comms[0]), loomSuccess);
  EXPECT_EQ(loomCommDestroy(comms[1]), loomSuccess);
}

// A split waits for every rank in the bootstrap; an abort (signal-safe path, from a watchdog
// thread) ends that wait too.
TEST(AbortTest, AbortEndsASplitThatWaitsForAMissingRank) {
  std::vector<loomComm_t> comms = initAll("loopback", 2, kTimeoutMs);
  ASSERT_FALSE(comms.empty());
  std::thread watchdog([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_EQ(loomCommAbortSignalSafe(comms[0]), loomSuccess);
  });
  auto t0 = std::chrono::steady_clock::now();
  loomComm_t sub = nullptr;
  loomResult_t r = loomCommSplit(comms[0], 0, 0, &sub, nullptr);
  const double took = since(t0);
  watchdog.join();
  EXPECT_EQ(r, loomAborted) << loomGetLastError(comms[0]);
  EXPECT_EQ(sub, nullptr);
  EXPECT_LT(took, 0.2 + kPromptSec);
  std::printf("[measured] abort during split -> %s after %.3f s (abort at 0.200 s)\n",
              loomGetErrorString(r), took);
  EXPECT_EQ(loomCommAbort(comms[0]), loomSuccess);
  EXPECT_EQ(loomCommDestroy(comms[1]), loomSuccess);
}

TEST(AbortTest, SignalSafeAbortRejectsANullCommunicator) {
  EXPECT_EQ(loomCommAbortSignalSafe(nullptr), loomInvalidArgument);
}

}  // namespace
}  // namespace loom::test
