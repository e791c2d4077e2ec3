// loomrun's behaviour: the environment each rank gets, exit-code propagation, a failing or
// crashing rank bringing the job down within the grace period with a message naming it,
// escalation to SIGKILL, signal forwarding, no orphans, tagged output, timeouts, and the
// multi-host form (two loomruns on 127.0.0.1 standing in for two hosts).
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "subprocess.h"

namespace loom::test {
namespace {

const std::string kLoomrun = LOOMRUN_PATH;
const std::string kProbe = RANK_PROBE_PATH;

// Every test's ranks use loopback only.
const std::map<std::string, std::string> kEnv = {{"LOOM_SOCKET_IFNAME", "lo"}};

ProcessResult loomrun(const std::vector<std::string>& args, double deadline = 60) {
  std::vector<std::string> argv{kLoomrun};
  argv.insert(argv.end(), args.begin(), args.end());
  return runProcess(argv, kEnv, deadline);
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

int freePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

TEST(LoomrunTest, GivesEveryRankTheRendezvousEnvironment) {
  ProcessResult r = loomrun({"-np", "3", kProbe, "env"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  std::set<std::string> ids;
  std::set<int> ranks;
  for (const std::string& line : lines(r.out)) {
    int rank = -1, world = -1, local = -1, localSize = -1;
    size_t idLen = 0;
    char id[300] = {};
    ASSERT_EQ(std::sscanf(line.c_str(), "rank=%d world=%d local=%d/%d idlen=%zu id=%299s", &rank,
                          &world, &local, &localSize, &idLen, id),
              6)
        << line;
    EXPECT_EQ(world, 3);
    EXPECT_EQ(local, rank);
    EXPECT_EQ(localSize, 3);
    EXPECT_EQ(idLen, 256u);  // hex of the 128 bytes of loomUniqueId
    ranks.insert(rank);
    ids.insert(id);
  }
  EXPECT_EQ(ranks, (std::set<int>{0, 1, 2}));
  EXPECT_EQ(ids.size(), 1u) << "every rank must get the same unique id";
}

TEST(LoomrunTest, RunsALoomJobEndToEnd) {
  ProcessResult r = loomrun({"-np", "3", kProbe, "allreduce"});
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(lines(r.out).size(), 3u) << r.out;
}

TEST(LoomrunTest, PropagatesTheFirstFailingExitCode) {
  ProcessResult r = loomrun({"-np", "3", "--grace", "1", kProbe, "exit", "2", "7"});
  EXPECT_EQ(r.exitCode, 7) << r.err;
  EXPECT_NE(r.err.find("rank 2 "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("exited with code 7"), std::string::npos) << r.err;
}

TEST(LoomrunTest, CrashingRankBringsTheJobDownWithinTheGracePeriod) {
  // Rank 1 dies of SIGSEGV after 0.2 s; the others would sleep for 60 s.
  ProcessResult r =
      loomrun({"-np", "3", "--grace", "1", "--kill-after", "1", kProbe, "crash", "1"});
  EXPECT_EQ(r.exitCode, 128 + SIGSEGV) << r.err;
  EXPECT_LT(r.seconds, 0.2 + 1 + 1 + 3) << "grace 1 s + kill-after 1 s + slack";
  EXPECT_NE(r.err.find("rank 1 "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("SIGSEGV"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("SIGTERM"), std::string::npos) << r.err;
}

TEST(LoomrunTest, EscalatesToSigkillWhenRanksIgnoreSigterm) {
  ProcessResult r =
      loomrun({"-np", "2", "--timeout", "0.5", "--kill-after", "0.5", kProbe, "ignore-term"});
  EXPECT_EQ(r.exitCode, 124) << r.err;
  EXPECT_LT(r.seconds, 5.0);
  EXPECT_NE(r.err.find("SIGKILL"), std::string::npos) << r.err;
}

TEST(LoomrunTest, TimeoutStopsTheJob) {
  ProcessResult r = loomrun({"-np", "2", "--timeout", "1", kProbe, "exit", "99", "0"});
  EXPECT_EQ(r.exitCode, 124) << r.err;
  EXPECT_LT(r.seconds, 5.0);
  EXPECT_NE(r.err.find("timed out"), std::string::npos) << r.err;
}

TEST(LoomrunTest, LeavesNoOrphans) {
  // Every rank forks a grandchild that would sleep 60 s; rank 0 then exits with 3.
  const std::string dir = makeTempDir();
  ProcessResult r = loomrun({"-np", "3", "--grace", "0.5", kProbe, "grandchild", dir, "0", "3"});
  EXPECT_EQ(r.exitCode, 3) << r.err;
  int pids = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::istringstream in(readFile(entry.path()));
    for (long pid; in >> pid; ++pids)
      EXPECT_TRUE(waitGone(static_cast<pid_t>(pid), 5.0)) << "pid " << pid << " outlived the job";
  }
  EXPECT_EQ(pids, 6) << "3 ranks and 3 grandchildren";
  removeTree(dir);
}

TEST(LoomrunTest, ForwardsSigintAndLeavesNothingRunning) {
  const std::string dir = makeTempDir();
  Subprocess p;
  ASSERT_TRUE(p.start({kLoomrun, "-np", "2", "--grace", "2", kProbe, "ready", dir}, kEnv));
  // Wait (bounded) until both ranks have written their pids.
  std::vector<pid_t> ranks;
  const double end = monotonicSeconds() + 20;
  while (ranks.size() < 2 && monotonicSeconds() < end) {
    ranks.clear();
    for (int r = 0; r < 2; ++r) {
      const std::string text = readFile(dir + "/ready" + std::to_string(r));
      if (!text.empty()) ranks.push_back(static_cast<pid_t>(std::stol(text)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(ranks.size(), 2u);
  kill(p.pid(), SIGINT);
  ProcessResult r = p.wait(20);
  EXPECT_EQ(r.exitCode, 128 + SIGINT) << r.err;
  EXPECT_NE(r.err.find("SIGINT"), std::string::npos) << r.err;
  for (pid_t pid : ranks)
    EXPECT_TRUE(waitGone(pid, 5.0)) << "rank pid " << pid;
  removeTree(dir);
}

TEST(LoomrunTest, TagsOutputLinesWithTheRank) {
  ProcessResult r = loomrun({"-np", "2", "--tag-output", kProbe, "print"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  std::set<std::string> got;
  for (const std::string& line : lines(r.out))
    got.insert(line);
  EXPECT_EQ(got, (std::set<std::string>{"[rank0]: hello from 0", "[rank0]: tail 0",
                                        "[rank1]: hello from 1", "[rank1]: tail 1"}))
      << r.out;
}

TEST(LoomrunTest, MultiHostFormOnOneHost) {
  // Two loomruns stand in for two hosts of 2 ranks each; node 0's rank 0 runs the root.
  const std::string master = "127.0.0.1:" + std::to_string(freePort());
  std::map<std::string, std::string> env = kEnv;
  env["LOOM_SECRET"] = "00112233445566778899aabbccddeeff";
  Subprocess nodes[2];
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(nodes[i].start({kLoomrun, "--nnodes", "2", "--node-rank", std::to_string(i),
                                "--master", master, "-np", "2", kProbe, "allreduce"},
                               env));
  }
  for (int i = 0; i < 2; ++i) {
    ProcessResult r = nodes[i].wait(60);
    EXPECT_EQ(r.exitCode, 0) << "node " << i << ": " << r.out << r.err;
    EXPECT_NE(r.out.find("of 4: sum 10 ok"), std::string::npos) << r.out;
  }
}

TEST(LoomrunTest, WarnsWithoutASecretOnSeveralHosts) {
  ProcessResult r = loomrun({"--nnodes", "2", "--node-rank", "0", "--master", "127.0.0.1:1",
                             "--timeout", "0.5", kProbe, "env"});
  EXPECT_NE(r.err.find("LOOM_SECRET"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("rank=0 world=2 local=0/1 idlen=0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("commid=127.0.0.1:1"), std::string::npos) << r.out;
}

TEST(LoomrunTest, ReportsAMissingProgram) {
  ProcessResult r = loomrun({"-np", "2", "/nonexistent/program"});
  EXPECT_EQ(r.exitCode, 127);
  EXPECT_NE(r.err.find("/nonexistent/program"), std::string::npos) << r.err;
}

TEST(LoomrunTest, RejectsBadUsage) {
  EXPECT_EQ(loomrun({"-np", "2"}).exitCode, 2);
  EXPECT_EQ(loomrun({"-np", "zero", kProbe, "env"}).exitCode, 2);
  EXPECT_EQ(loomrun({"--nnodes", "2", "--node-rank", "0", kProbe, "env"}).exitCode, 2);
  EXPECT_EQ(loomrun({"--help"}).exitCode, 0);
}

}  // namespace
}  // namespace loom::test
