// Resource hygiene and authentication at the communicator level:
//   - 1,000 init/destroy cycles do not grow descriptors or memory;
//   - strangers at the rendezvous root (a port scanner, garbage, another job's secret) are
//     refused and logged while the job runs on unaffected;
//   - a unique id does not outlive its job.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "base/socket.h"
#include "bootstrap/tcp_store.h"
#include "bootstrap/unique_id.h"
#include "fault_util.h"

namespace loom::test {
namespace {

// Odd cycles end with loomCommAbort instead of loomCommDestroy: both must release everything.
TEST(HygieneTest, ThousandInitDestroyCyclesDoNotGrowDescriptorsThreadsOrMemory) {
  int cycles = 0;
  auto cycle = [&cycles] {
    std::vector<loomComm_t> comms = initAll("shm", 2, 20000);
    if (comms.empty()) return;
    // Connect (shm segments, sockets) by running one operation.
    auto out = onEveryRank(comms, [&](int r) { return allReduceChecked(comms[r], 1000); });
    for (const RankOutcome& o : out)
      EXPECT_EQ(o.result, loomSuccess) << o.message;
    if (++cycles % 2 == 0) {
      destroyAll(&comms);
      return;
    }
    for (loomComm_t c : comms)
      EXPECT_EQ(loomCommAbort(c), loomSuccess);
  };
  for (int i = 0; i < 50; ++i)
    cycle();  // warm up: allocator arenas, lazily created singletons
  const int fds0 = openDescriptors();
  const int threads0 = threadCount();
  const long rss0 = residentKiB();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 1000 && !HasFailure(); ++i)
    cycle();
  const int fds1 = openDescriptors();
  const int threads1 = threadCount();
  const long rss1 = residentKiB();
  EXPECT_EQ(fds1, fds0);
  EXPECT_EQ(threads1, threads0);
  // Allocator noise is a few hundred KiB; a leak of one segment or staging ring per cycle would
  // be tens of MiB. Under AddressSanitizer freed memory sits in its quarantine (and its leak
  // checker does this job), so resident memory says nothing there.
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  EXPECT_LT(rss1 - rss0, 8 * 1024) << "RSS " << rss0 << " KiB -> " << rss1 << " KiB";
#endif
  std::printf(
      "[measured] 1000 init/allreduce/destroy-or-abort cycles (2 ranks, shm): %.1f s, fds %d -> "
      "%d, threads %d -> %d, RSS %ld -> %ld KiB\n",
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), fds0, fds1,
      threads0, threads1, rss0, rss1);
}

loomResult_t initRank(loomComm_t* comm, const loomUniqueId& id, int rank) {
  loomConfig_t cfg = LOOM_CONFIG_INITIALIZER;
  cfg.transport = "socket";
  cfg.timeoutMs = 20000;
  return loomCommInitRankConfig(comm, 2, id, rank, &cfg);
}

TEST(AuthTest, StrangersAtTheRootAreRefusedAndLoggedWhileTheJobRunsOn) {
  // Captured from before the root starts: it may live in a helper process that inherits stderr.
  testing::internal::CaptureStderr();
  loomUniqueId raw;
  loomUniqueId otherRaw;
  const bool ids =
      loomGetUniqueId(&raw) == loomSuccess && loomGetUniqueId(&otherRaw) == loomSuccess;
  auto id = bootstrap::UniqueId::fromBytes(reinterpret_cast<const uint8_t*>(raw.internal));
  auto other = bootstrap::UniqueId::fromBytes(reinterpret_cast<const uint8_t*>(otherRaw.internal));
  if (!ids || !id.isOk() || !other.isOk()) {
    testing::internal::GetCapturedStderr();
    FAIL() << "could not create unique ids";
  }
  std::atomic<bool> jobUp{false};
  std::vector<loomResult_t> results(2, loomInternalError);
  std::vector<std::thread> ranks;
  for (int r = 0; r < 2; ++r)
    ranks.emplace_back([&, r] {
      loomComm_t comm = nullptr;
      results[r] = initRank(&comm, raw, r);
      if (results[r] != loomSuccess) return;
      jobUp.store(true);
      for (int i = 0; i < 200 && results[r] == loomSuccess; ++i)
        results[r] = allReduceChecked(comm, 4096);
      if (loomCommDestroy(comm) != loomSuccess && results[r] == loomSuccess)
        results[r] = loomInternalError;
    });
  // A port scanner (connect, close), a client that sends garbage, and a rank of another job
  // (right address, wrong secret).
  for (int i = 0; i < 3; ++i) {
    auto fd = connectTcp(id->root, Deadline::afterMs(5000));
    EXPECT_TRUE(fd.isOk()) << fd.status().toString();
  }
  {
    auto fd = connectTcp(id->root, Deadline::afterMs(5000));
    EXPECT_TRUE(fd.isOk()) << fd.status().toString();
    std::vector<uint8_t> garbage(512, 0xab);
    if (fd.isOk())
      sendAll(fd->get(), garbage.data(), garbage.size(), Deadline::afterMs(2000), "root")
          .ignoreError();
  }
  bootstrap::UniqueId stranger = *id;
  stranger.secret = other->secret;
  auto client = bootstrap::TcpStoreClient::connect(stranger, 1, 2, Deadline::afterMs(5000));
  EXPECT_FALSE(client.isOk()) << "a client with another job's secret was let in";
  for (std::thread& t : ranks)
    t.join();
  const std::string log = testing::internal::GetCapturedStderr();
  EXPECT_TRUE(jobUp.load());
  EXPECT_EQ(results[0], loomSuccess);
  EXPECT_EQ(results[1], loomSuccess);
  EXPECT_NE(log.find("dropped the connection from"), std::string::npos) << log;
  EXPECT_NE(log.find("not a loom store hello"), std::string::npos) << log;
  std::printf("[measured] stranger with another job's secret: %s\n",
              client.isOk() ? "admitted" : client.status().toString().c_str());
}

// Once every rank of a job has left, its root is gone: the id cannot start another job.
TEST(AuthTest, UniqueIdIsNotReusableAfterItsJobEnded) {
  loomUniqueId raw;
  ASSERT_EQ(loomGetUniqueId(&raw), loomSuccess);
  std::vector<std::thread> ranks;
  std::vector<loomResult_t> results(2, loomInternalError);
  for (int r = 0; r < 2; ++r)
    ranks.emplace_back([&, r] {
      loomComm_t comm = nullptr;
      results[r] = initRank(&comm, raw, r);
      if (results[r] == loomSuccess) results[r] = loomCommDestroy(comm);
    });
  for (std::thread& t : ranks)
    t.join();
  ASSERT_EQ(results[0], loomSuccess);
  ASSERT_EQ(results[1], loomSuccess);
  loomConfig_t cfg = LOOM_CONFIG_INITIALIZER;
  cfg.timeoutMs = 2000;
  loomComm_t again = nullptr;
  const auto t0 = std::chrono::steady_clock::now();
  loomResult_t r = loomCommInitRankConfig(&again, 1, raw, 0, &cfg);
  EXPECT_NE(r, loomSuccess);
  EXPECT_EQ(again, nullptr);
  std::printf("[measured] reused unique id -> %s after %.3f s: %s\n", loomGetErrorString(r),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
              loomGetLastError(nullptr));
}

}  // namespace
}  // namespace loom::test
