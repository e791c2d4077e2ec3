// Ranks as separate processes, over shared memory and sockets.
#include <gtest/gtest.h>

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>

#include "launcher.h"
#include "transports/transport.h"

namespace loom::test {
namespace {

struct Param {
  const char* transport;
  int nranks;
};

std::string paramName(const testing::TestParamInfo<Param>& info) {
  return std::string(info.param.transport) + "_" + std::to_string(info.param.nranks) + "ranks";
}

std::map<std::string, std::string> envFor(const char* transport) {
  return {
      {"LOOM_TRANSPORT", transport}, {"LOOM_TIMEOUT_MS", "60000"}, {"LOOM_SLICE_BYTES", "4096"}};
}

// LOOMTEST_VERBOSE=1 prints every rank's output (to read the error messages).
void maybePrint(const LaunchResult& res) {
  if (!getenv("LOOMTEST_VERBOSE")) return;
  for (size_t r = 0; r < res.ranks.size(); ++r)
    std::printf("--- rank %zu (exit %d, signal %d, %.2f s)\n%s", r, res.ranks[r].exitCode,
                res.ranks[r].signal, res.ranks[r].seconds, res.ranks[r].output.c_str());
}

void expectAllExitedCleanly(const LaunchResult& res) {
  EXPECT_FALSE(res.timedOut) << "ranks were killed at the deadline";
  for (size_t r = 0; r < res.ranks.size(); ++r)
    EXPECT_EQ(res.ranks[r].exitCode, 0) << "rank " << r << " output:\n" << res.ranks[r].output;
}

// loom's segments left in /dev/shm. A host window's segment (loom-w-<hash>-<rank>-<pid>) exists
// by name while its communicator initialises; one whose creator is alive belongs to a test
// running beside this one (ctest -j), so only those of dead processes count.
int loomSegmentsInDevShm() {
  int n = 0;
  if (DIR* d = opendir("/dev/shm")) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name.find("loom") == std::string::npos) continue;
      if (name.rfind("loom-w-", 0) == 0) {
        const long long pid = std::atoll(name.c_str() + name.rfind('-') + 1);
        if (pid > 0 && (kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH)) continue;
      }
      ++n;
    }
    closedir(d);
  }
  return n;
}

class MultiProcessTest : public testing::TestWithParam<Param> {};

TEST_P(MultiProcessTest, EveryCollectiveTypeAndOpIsExact) {
  const Param p = GetParam();
  LaunchResult res = launchRanks(siblingBinary("loom_test_worker"), {"sweep"}, p.nranks,
                                 envFor(p.transport), 240000);
  expectAllExitedCleanly(res);
  EXPECT_EQ(loomSegmentsInDevShm(), 0);
}

INSTANTIATE_TEST_SUITE_P(Processes, MultiProcessTest,
                         testing::Values(Param{"auto", 1}, Param{"shm", 2}, Param{"shm", 3},
                                         Param{"shm", 4}, Param{"shm", 5}, Param{"shm", 8},
                                         Param{"socket", 2}, Param{"socket", 3}, Param{"socket", 4},
                                         Param{"socket", 5}, Param{"socket", 8}),
                         paramName);

// The direct algorithms through the host window (runtime/direct.h): the whole sweep with
// AllReduce forced to one_shot or two_shot and every other collective that has one to
// one_shot, in 4 KiB rounds so that most calls take several; every rank reports the window at
// init.
class HostWindowTest : public testing::TestWithParam<std::tuple<const char*, int>> {};

TEST_P(HostWindowTest, SweepIsExactWithEveryCollectiveInTheWindow) {
  const auto [algo, nranks] = GetParam();
  auto env = envFor("shm");
  env["LOOM_ALGO"] = std::string("allreduce:") + algo +
                     ";allgather:one_shot;reducescatter:one_shot;broadcast:one_shot;"
                     "reduce:one_shot;alltoall:one_shot";
  env["LOOM_DIRECT_BYTES"] = "4096";
  env["LOOM_DEBUG"] = "INFO";
  env["LOOM_DEBUG_SUBSYS"] = "SHM";
  LaunchResult res = launchRanks(siblingBinary("loom_test_worker"), {"sweep"}, nranks, env, 240000);
  expectAllExitedCleanly(res);
  for (int r = 0; r < nranks; ++r)
    EXPECT_NE(res.ranks[r].output.find("host window on: " + std::to_string(nranks) +
                                       " ranks, 4 x 4096 bytes"),
              std::string::npos)
        << "rank " << r << ":\n"
        << res.ranks[r].output;
  EXPECT_EQ(loomSegmentsInDevShm(), 0);
}

INSTANTIATE_TEST_SUITE_P(Direct, HostWindowTest,
                         testing::Combine(testing::Values("one_shot", "two_shot"),
                                          testing::Values(2, 3, 5)),
                         [](const testing::TestParamInfo<std::tuple<const char*, int>>& i) {
                           return std::string(std::get<0>(i.param)) + "_" +
                                  std::to_string(std::get<1>(i.param)) + "ranks";
                         });

// No window when it is turned off, or when a peer is not reached over shm.
TEST(HostWindowOff, NotWithDirectBytesZeroOrOverSockets) {
  for (const auto& [transport, bytes] :
       std::vector<std::pair<const char*, const char*>>{{"shm", "0"}, {"socket", "1048576"}}) {
    auto env = envFor(transport);
    env["LOOM_DIRECT_BYTES"] = bytes;
    env["LOOM_ALGO"] = "allreduce:two_shot";  // still runs: as a schedule over the transport
    env["LOOM_DEBUG"] = "INFO";
    env["LOOM_DEBUG_SUBSYS"] = "SHM";
    LaunchResult res =
        launchRanks(siblingBinary("loom_test_worker"), {"allreduce", "3"}, 2, env, 60000);
    expectAllExitedCleanly(res);
    for (int r = 0; r < 2; ++r) {
      EXPECT_EQ(res.ranks[r].output.find("host window on"), std::string::npos)
          << transport << " " << bytes << " rank " << r << ":\n"
          << res.ranks[r].output;
      EXPECT_NE(res.ranks[r].output.find("all 3 allreduces exact"), std::string::npos)
          << res.ranks[r].output;
    }
  }
}

// A rank killed, one that exits without destroying, or one that aborts (and lives on) while the
// others wait for it in the window: they fail well within the timeout (kill(pid, 0) finds the
// first two, the window's "gone" flag the third). A survivor that fails aborts, so the other
// survivor may blame it instead; at least one names rank 1.
TEST(HostWindowPeerDeath, KilledExitedOrAbortedRankFailsTheOthers) {
  for (const char* mode : {"die", "exit", "abort"}) {
    auto env = envFor("shm");
    env["LOOM_TIMEOUT_MS"] = "20000";
    env["LOOM_ALGO"] = "allreduce:two_shot";
    LaunchResult res =
        launchRanks(siblingBinary("loom_test_worker"), {mode, "1", "4"}, 3, env, 60000);
    maybePrint(res);
    EXPECT_FALSE(res.timedOut) << mode;
    const std::string naming =
        std::string(mode) == "abort" ? "rank 1 left the communicator" : "rank 1 (pid";
    int named = 0;
    for (int r : {0, 2}) {
      EXPECT_EQ(res.ranks[r].exitCode, 0) << mode << " rank " << r << ":\n" << res.ranks[r].output;
      EXPECT_LT(res.ranks[r].seconds, 15.0) << mode;
      EXPECT_NE(res.ranks[r].output.find("during a call in the host window"), std::string::npos)
          << mode << " rank " << r << ":\n"
          << res.ranks[r].output;
      named += res.ranks[r].output.find(naming) != std::string::npos;
    }
    EXPECT_GE(named, 1) << mode;
    EXPECT_EQ(loomSegmentsInDevShm(), 0);
  }
}

// A segment left by a process that died during init (before the unlink) is removed by the next
// window created on the host; nothing else is touched.
TEST(HostWindowHygiene, OrphanedSegmentOfADeadProcessIsRemoved) {
  const pid_t child = fork();
  if (child == 0) _exit(0);
  ASSERT_GT(child, 0);
  ASSERT_EQ(waitpid(child, nullptr, 0), child);  // its pid is now dead
  const std::string orphan = "/dev/shm/loom-w-00000000000000ff-0-" + std::to_string(child);
  { std::ofstream(orphan) << "x"; }
  ASSERT_EQ(access(orphan.c_str(), F_OK), 0);
  EXPECT_EQ(loomSegmentsInDevShm(), 1);  // a dead creator's segment counts as left behind
  auto env = envFor("shm");
  LaunchResult res =
      launchRanks(siblingBinary("loom_test_worker"), {"allreduce", "2"}, 2, env, 60000);
  expectAllExitedCleanly(res);
  EXPECT_NE(access(orphan.c_str(), F_OK), 0) << orphan << " is still there";
  unlink(orphan.c_str());
  EXPECT_EQ(loomSegmentsInDevShm(), 0);
}

// Ranks that disagree about the call fail with the mismatch named, as over a transport.
TEST(HostWindowMismatch, DifferentCountsFailOnEveryRank) {
  for (const char* algo : {"one_shot", "two_shot"}) {
    auto env = envFor("shm");
    env["LOOM_TIMEOUT_MS"] = "10000";
    env["LOOM_ALGO"] = std::string("allreduce:") + algo +
                       ";allgather:one_shot;reducescatter:one_shot;broadcast:one_shot;"
                       "reduce:one_shot;alltoall:one_shot";
    LaunchResult res = launchRanks(siblingBinary("loom_test_worker"), {"mismatch"}, 3, env, 60000);
    maybePrint(res);
    EXPECT_FALSE(res.timedOut) << algo;
    for (int r = 0; r < 3; ++r) {
      EXPECT_EQ(res.ranks[r].exitCode, 0) << algo << " rank " << r << ":\n" << res.ranks[r].output;
      EXPECT_LT(res.ranks[r].seconds, 8.0) << algo;
    }
    int named = 0;
    for (int r = 0; r < 3; ++r)
      named += res.ranks[r].output.find("staged a different call") != std::string::npos;
    EXPECT_GE(named, 1) << algo;
    EXPECT_EQ(loomSegmentsInDevShm(), 0);
  }
}

// Small calls through the host window reuse one execution (Communicator::prepareInWindow, the
// fast lane): repeated calls of changing counts and roots stay exact and counted, and a peer
// that stops calling makes the others' next call time out naming where it waits, sticky after.
TEST(HostWindowFastLane, RepeatedCallsAreExactAndCountedAndAStallTimesOut) {
  for (int nranks : {2, 3}) {
    auto env = envFor("shm");
    env["LOOM_TIMEOUT_MS"] = "1500";
    env["LOOM_ALGO"] = "allreduce:one_shot;allgather:one_shot;broadcast:one_shot";
    LaunchResult res =
        launchRanks(siblingBinary("loom_test_worker"), {"repeat", "200"}, nranks, env, 60000);
    maybePrint(res);
    EXPECT_FALSE(res.timedOut);
    for (int r = 0; r < nranks; ++r) {
      EXPECT_EQ(res.ranks[r].exitCode, 0) << nranks << " ranks, rank " << r << ":\n"
                                          << res.ranks[r].output;
      EXPECT_NE(res.ranks[r].output.find("200 rounds exact, counters right"), std::string::npos)
          << res.ranks[r].output;
      if (r == 1) continue;
      EXPECT_NE(res.ranks[r].output.find("in the host window"), std::string::npos)
          << res.ranks[r].output;
      EXPECT_NE(res.ranks[r].output.find("waiting for rank 1"), std::string::npos)
          << res.ranks[r].output;
    }
    EXPECT_EQ(loomSegmentsInDevShm(), 0);
  }
}

// A Broadcast's root may finish its calls before the others read them (four buffers: up to three
// rounds ahead) and destroy its communicator: what it staged is still delivered.
TEST(HostWindowFastLane, RootThatFinishedAndLeftStillDelivers) {
  auto env = envFor("shm");
  env["LOOM_ALGO"] = "broadcast:one_shot";
  LaunchResult res = launchRanks(siblingBinary("loom_test_worker"), {"leave", "50"}, 3, env, 60000);
  maybePrint(res);
  expectAllExitedCleanly(res);
  for (int r = 0; r < 3; ++r)
    EXPECT_NE(res.ranks[r].output.find("50 broadcasts exact"), std::string::npos)
        << res.ranks[r].output;
  EXPECT_EQ(loomSegmentsInDevShm(), 0);
}

bool ibverbsBuiltIn() {
  const std::vector<std::string> names = transport::transportNames();
  return std::find(names.begin(), names.end(), "ibverbs") != names.end();
}

// LOOM_TRANSPORT=ibverbs between processes: over RDMA where a port is active, otherwise the
// runtime falls back to socket (saying so at WARN, with the reason: no device, or a library
// built without libibverbs) and every result is still exact.
TEST(IbverbsFallbackTest, ForcedIbverbsRunsTheSweepExactlyWithOrWithoutRdma) {
  LaunchResult res =
      launchRanks(siblingBinary("loom_test_worker"), {"sweep"}, 3, envFor("ibverbs"), 240000);
  maybePrint(res);
  expectAllExitedCleanly(res);
  const std::string& out = res.ranks[0].output;
  const bool fellBack = out.find("falling back to socket") != std::string::npos;
  if (fellBack) {
    const char* why = ibverbsBuiltIn() ? "no usable RDMA device" : "unknown transport 'ibverbs'";
    EXPECT_NE(out.find(why), std::string::npos) << out;
  } else {
    std::printf("ranks ran over ibverbs (an RDMA port is active here)\n");
  }
}

// LOOM_TRANSPORT=auto on a machine without an RDMA port: each process says once, at INFO,
// that ibverbs is not used, and nothing else changes.
TEST(IbverbsFallbackTest, AutoSaysOnceAtInfoThatIbverbsIsNotUsed) {
  auto env = envFor("auto");
  env["LOOM_DEBUG"] = "INFO";
  env["LOOM_DEBUG_SUBSYS"] = "NET";
  LaunchResult res = launchRanks(siblingBinary("loom_test_worker"), {"sweep"}, 2, env, 240000);
  maybePrint(res);
  expectAllExitedCleanly(res);
  for (size_t r = 0; r < res.ranks.size(); ++r) {
    const std::string& out = res.ranks[r].output;
    const std::string line = "ibverbs not used (no usable RDMA device";
    const size_t first = out.find(line);
    if (first == std::string::npos) {  // not built in, or an RDMA port is active here
      const bool expected = !ibverbsBuiltIn() || out.find("ibverbs: using") != std::string::npos;
      EXPECT_TRUE(expected) << "rank " << r << ":\n" << out;
      continue;
    }
    EXPECT_EQ(out.find(line, first + 1), std::string::npos) << "said twice:\n" << out;
  }
}

class PeerDeathTest : public testing::TestWithParam<const char*> {};

// A rank killed mid-job turns into an error on every other rank within the timeout - never a
// hang - and the error is sticky.
TEST_P(PeerDeathTest, KilledRankMakesTheOthersFailWithinTheTimeout) {
  auto env = envFor(GetParam());
  env["LOOM_TIMEOUT_MS"] = "10000";
  LaunchResult res =
      launchRanks(siblingBinary("loom_test_worker"), {"die", "2", "5"}, 4, env, 60000);
  maybePrint(res);
  EXPECT_FALSE(res.timedOut);
  EXPECT_EQ(res.ranks[2].signal, SIGKILL);
  for (int r : {0, 1, 3}) {
    EXPECT_EQ(res.ranks[r].exitCode, 0) << "rank " << r << ":\n" << res.ranks[r].output;
    EXPECT_LT(res.ranks[r].seconds, 30.0);
    EXPECT_NE(res.ranks[r].output.find("failed"), std::string::npos) << res.ranks[r].output;
  }
  EXPECT_EQ(loomSegmentsInDevShm(), 0);
}

TEST_P(PeerDeathTest, RankThatExitsWithoutDestroyMakesTheOthersFail) {
  auto env = envFor(GetParam());
  env["LOOM_TIMEOUT_MS"] = "10000";
  LaunchResult res =
      launchRanks(siblingBinary("loom_test_worker"), {"exit", "0", "3"}, 3, env, 60000);
  maybePrint(res);
  EXPECT_FALSE(res.timedOut);
  EXPECT_EQ(res.ranks[0].exitCode, 0);
  for (int r : {1, 2}) {
    EXPECT_EQ(res.ranks[r].exitCode, 0) << "rank " << r << ":\n" << res.ranks[r].output;
    EXPECT_LT(res.ranks[r].seconds, 30.0);
  }
}

// The fault-injecting transport kills rank 2 (SIGKILL) in the middle of a collective, at the
// 13th message of a connection (connections are established by then): the survivors get an
// error naming it within the timeout, and nothing is left in /dev/shm.
TEST_P(PeerDeathTest, RankKilledMidCollectiveIsAnErrorNamingItOnTheOthers) {
  auto env = envFor(GetParam());
  env["LOOM_TIMEOUT_MS"] = "5000";
  LaunchResult res = launchRanks(siblingBinary("loom_test_worker"),
                                 {"faults", "kill:rank=2,msg=12", "50"}, 4, env, 60000);
  maybePrint(res);
  EXPECT_FALSE(res.timedOut);
  EXPECT_EQ(res.ranks[2].signal, SIGKILL);
  for (int r : {0, 1, 3}) {
    EXPECT_EQ(res.ranks[r].exitCode, 0) << "rank " << r << ":\n" << res.ranks[r].output;
    EXPECT_LT(res.ranks[r].seconds, 30.0);
    EXPECT_NE(res.ranks[r].output.find("failed"), std::string::npos) << res.ranks[r].output;
  }
  // A rank that exchanges data with rank 2 names it. (The others may blame the survivor that
  // aborted after seeing the death first: its connections close too.)
  int naming = 0;
  for (int r : {0, 1, 3})
    naming += res.ranks[r].output.find("rank 2 (") != std::string::npos;
  EXPECT_GE(naming, 1);
  for (int r : {0, 1, 3})
    std::printf("[measured] %s", res.ranks[r].output.c_str());
  EXPECT_EQ(loomSegmentsInDevShm(), 0);
}

INSTANTIATE_TEST_SUITE_P(Transports, PeerDeathTest, testing::Values("shm", "socket"));

}  // namespace
}  // namespace loom::test
