// The shm transport between real processes: a peer killed mid-transfer, and CMA forbidden in
// one process (seccomp), which must fall back to the FIFO in that direction only.
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <cerrno>
#include <cstddef>
#include <tuple>

#include "shm_test_util.h"

namespace loom::transport::shm::testing {
namespace {

constexpr int kSkipExitCode = 77;

// This process and a forked child as ranks 0 and 1 of one pair, addresses exchanged over a
// socketpair created before the fork.
class ParentChild {
 public:
  Status start(const ShmOptions& options, const std::function<int(RankEnv&)>& childBody) {
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv_) != 0)
      return systemErrorFromErrno("socketpair", errno);
    uint64_t hash = randomCommHash();
    child_ = std::make_unique<Child>([&]() -> int {
      auto env = makeRank(1, 2, hash, testSecret(), options);
      if (!env.isOk()) return 2;
      (*env)->mode = Mode::kProcesses;
      if (!exchange(sv_[1], (*env)->transport->localAddress(), &(*env)->peerAddress)) return 3;
      return childBody(**env);
    });
    LOOM_ASSIGN_OR_RETURN(env_, makeRank(0, 2, hash, testSecret(), options));
    env_->mode = Mode::kProcesses;
    if (!exchange(sv_[0], env_->transport->localAddress(), &env_->peerAddress))
      return remoteError("address exchange with the child failed");
    return Status::ok();
  }
  ~ParentChild() {
    child_.reset();
    ::close(sv_[0]);
    ::close(sv_[1]);
  }
  RankEnv& env() { return *env_; }
  Child& child() { return *child_; }

 private:
  static bool exchange(int fd, const std::string& mine, std::string* theirs) {
    char buf[256] = {};
    std::snprintf(buf, sizeof(buf), "%s", mine.c_str());
    if (::write(fd, buf, sizeof(buf)) != sizeof(buf)) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(kTestTimeoutMs)) != 1) return false;
    if (::recv(fd, buf, sizeof(buf), MSG_WAITALL) != sizeof(buf)) return false;
    *theirs = std::string(buf, strnlen(buf, sizeof(buf)));
    return true;
  }
  int sv_[2] = {-1, -1};
  std::unique_ptr<Child> child_;
  std::unique_ptr<RankEnv> env_;
};

class ShmKillTest : public ::testing::TestWithParam<std::tuple<bool, bool>> {};

// The child streams 4 MiB messages forever; the parent receives a few, kills it while a
// receive is pending and must get a RemoteError naming rank 1 within a deadline.
TEST_P(ShmKillTest, KilledPeerIsRemoteErrorWithinDeadline) {
  auto [singleCopy, sleeping] = GetParam();
  ShmOptions options;
  options.cma = singleCopy;
  constexpr size_t kBytes = 4 << 20;
  ParentChild pc;
  ASSERT_TRUE(pc.start(options, [&](RankEnv& env) -> int {
                  auto c = env.connect(0);
                  if (!c.isOk()) return 4;
                  std::vector<uint8_t> buf(kBytes, 7);
                  for (uint64_t i = 0;; ++i) {
                    if (!(*c)->postSend(buf.data(), buf.size(), i).isOk()) return 5;
                    if (!env.waitIdle(*c).isOk()) return 6;
                  }
                }).isOk());
  RankEnv& env = pc.env();
  env.sleepWhenIdle = sleeping;
  env.spinUs = 0;
  auto c = env.connect(0);
  ASSERT_TRUE(c.isOk()) << c.status().toString();
  std::vector<uint8_t> buf(kBytes);
  for (uint64_t i = 0; i < 3; ++i) {
    ASSERT_TRUE((*c)->postRecv(buf.data(), buf.size(), i).isOk());
    Status s = env.waitIdle(*c, 10000);
    ASSERT_TRUE(s.isOk()) << s.toString();
  }
  ASSERT_TRUE((*c)->postRecv(buf.data(), buf.size(), 3).isOk());
  // Let the transfer start, then kill the sender in the middle of it.
  env.waitFor([] { return false; }, 1).ignoreError();
  int64_t killedAt = nowNs();
  pc.child().kill();
  Status s = env.waitIdle(*c, 10000);
  double ms = (nowNs() - killedAt) / 1e6;
  // The message may have been complete before the kill; then the next one must fail.
  if (s.isOk()) {
    ASSERT_TRUE((*c)->postRecv(buf.data(), buf.size(), 4).isOk());
    s = env.waitIdle(*c, 10000);
    ms = (nowNs() - killedAt) / 1e6;
  }
  EXPECT_EQ(s.code(), Code::kRemoteError) << s.toString();
  EXPECT_NE(s.message().find("rank 1"), std::string::npos) << s.message();
  EXPECT_LT(ms, 2000.0) << "peer death noticed only after " << ms << " ms";
}

INSTANTIATE_TEST_SUITE_P(All, ShmKillTest, ::testing::Combine(::testing::Bool(), ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) ? "SingleCopy" : "FifoOnly") +
                                  (std::get<1>(info.param) ? "Sleeping" : "Spinning");
                         });

// Makes process_vm_readv fail with EPERM in this process, as a container profile would.
bool forbidCma() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_process_vm_readv, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0])), filter};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

Status exchangeLarge(RankEnv& env, Connection* c) {
  constexpr size_t kBytes = 3 << 20;
  std::vector<uint8_t> out(kBytes), in(kBytes);
  fillPattern(out.data(), kBytes, env.rank);
  for (int i = 0; i < 3; ++i) {
    LOOM_RETURN_IF_ERROR(c->postRecv(in.data(), kBytes, i));
    LOOM_RETURN_IF_ERROR(c->postSend(out.data(), kBytes, i));
    LOOM_RETURN_IF_ERROR(env.waitIdle(c));
    if (!checkPattern(in.data(), kBytes, 1 - env.rank)) return internalError("corrupted data");
  }
  return c->close(Deadline::afterMs(kTestTimeoutMs));
}

TEST(ShmCmaTest, ForbiddenCmaFallsBackToTheFifoInThatDirection) {
  ParentChild pc;
  ShmOptions options;
  options.cma = true;
  ASSERT_TRUE(pc.start(options, [](RankEnv& env) -> int {
                  if (!forbidCma()) return kSkipExitCode;
                  auto c = env.connect(0);
                  if (!c.isOk()) return 4;
                  // The parent can still read us: our sends use CMA.
                  if (!env.waitFor([&] { return env.shm(*c)->readyForTesting(); }).isOk()) return 5;
                  if (!env.shm(*c)->sendsWithCmaForTesting()) return 6;
                  return exchangeLarge(env, *c).isOk() ? 0 : 7;
                }).isOk());
  RankEnv& env = pc.env();
  auto c = env.connect(0);
  ASSERT_TRUE(c.isOk());
  Status s = env.waitFor([&] { return env.shm(*c)->readyForTesting(); });
  ASSERT_TRUE(s.isOk()) << s.toString();
  Status data = exchangeLarge(env, *c);
  int code = pc.child().wait(kTestTimeoutMs);
  if (code == kSkipExitCode) GTEST_SKIP() << "seccomp filters are not available here";
  EXPECT_EQ(code, 0);
  EXPECT_TRUE(data.isOk()) << data.toString();
  // The child cannot read us, so it never offered CMA: our sends went through the FIFO.
  EXPECT_FALSE(env.shm(*c)->sendsWithCmaForTesting());
}

}  // namespace
}  // namespace loom::transport::shm::testing
