#include "shm_test_util.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "base/random.h"
#include "base/time.h"

namespace loom::transport::shm::testing {

class Barrier {
 public:
  virtual ~Barrier() = default;
  virtual Status arrive(int rank, int64_t timeoutMs) = 0;
  // arrive() in two halves, for a rank that must keep working while it waits: post() says
  // this rank arrived; passed() is true once the other rank has too (call it until it is).
  virtual Status post(int rank) = 0;
  virtual Result<bool> passed(int rank) = 0;
};

namespace {

class ThreadBarrier final : public Barrier {
 public:
  Status arrive(int, int64_t timeoutMs) override {
    std::unique_lock<std::mutex> lock(mutex_);
    uint64_t generation = generation_;
    if (++arrived_ == 2) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
      return Status::ok();
    }
    if (cv_.wait_for(lock, std::chrono::milliseconds(timeoutMs),
                     [&] { return generation_ != generation; }))
      return Status::ok();
    return timeoutError("barrier: the other rank did not arrive");
  }
  Status post(int rank) override {
    std::lock_guard<std::mutex> lock(mutex_);
    posted_[rank] = generation_;
    if (++arrived_ == 2) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
    }
    return Status::ok();
  }
  Result<bool> passed(int rank) override {
    std::lock_guard<std::mutex> lock(mutex_);
    return generation_ != posted_[rank];
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
  uint64_t posted_[2] = {0, 0};  // the generation each rank posted in
};

// Between processes: each rank owns one end of a socketpair.
class SocketBarrier final : public Barrier {
 public:
  explicit SocketBarrier(int fd) : fd_(fd) {}
  Status arrive(int, int64_t timeoutMs) override {
    char byte = 1;
    if (::write(fd_, &byte, 1) != 1) return systemErrorFromErrno("barrier write", errno);
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeoutMs)) != 1)
      return timeoutError("barrier: the other rank did not arrive");
    if (::read(fd_, &byte, 1) != 1) return remoteError("barrier: the other rank is gone");
    return Status::ok();
  }
  Status post(int) override {
    char byte = 1;
    if (::write(fd_, &byte, 1) != 1) return systemErrorFromErrno("barrier write", errno);
    return Status::ok();
  }
  Result<bool> passed(int) override {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 0) != 1) return false;
    char byte = 0;
    if (::read(fd_, &byte, 1) != 1) return remoteError("barrier: the other rank is gone");
    return true;
  }

 private:
  int fd_;
};

Status sendString(int fd, const std::string& s) {
  uint32_t n = static_cast<uint32_t>(s.size());
  if (::write(fd, &n, 4) != 4 || ::write(fd, s.data(), n) != static_cast<ssize_t>(n))
    return systemErrorFromErrno("address exchange write", errno);
  return Status::ok();
}

Status recvString(int fd, std::string* s) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(kTestTimeoutMs)) != 1)
    return timeoutError("address exchange: nothing from the other rank");
  uint32_t n = 0;
  if (::read(fd, &n, 4) != 4 || n > 4096) return remoteError("address exchange: bad length");
  s->resize(n);
  if (::read(fd, s->data(), n) != static_cast<ssize_t>(n))
    return remoteError("address exchange: short read");
  return Status::ok();
}

int runChildRank(int rank, const PairOptions& options, uint64_t hash, int sock, int errFd,
                 const RankBody& body) {
  Status s;
  {
    auto env = makeRank(rank, 2, hash, testSecret(), options.shm);
    if (!env.isOk()) {
      s = env.status();
    } else {
      SocketBarrier barrier(sock);
      (*env)->mode = Mode::kProcesses;
      (*env)->barrier = &barrier;
      (*env)->sleepWhenIdle = options.sleepWhenIdle;
      (*env)->spinUs = options.spinUs;
      s = sendString(sock, (*env)->transport->localAddress());
      if (s.isOk()) s = recvString(sock, &(*env)->peerAddress);
      if (s.isOk()) s = body(**env);
    }
  }
  if (s.isOk()) return 0;
  std::string text = s.toString();
  [[maybe_unused]] ssize_t n = ::write(errFd, text.data(), text.size());
  return 1;
}

Status runProcesses(const PairOptions& options, const RankBody& body0, const RankBody& body1) {
  int sv[2], errPipes[2][2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return systemErrorFromErrno("socketpair", errno);
  for (auto& p : errPipes)
    if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return systemErrorFromErrno("pipe", errno);
  uint64_t hash = randomCommHash();
  Child c0([&] { return runChildRank(0, options, hash, sv[0], errPipes[0][1], body0); });
  Child c1([&] { return runChildRank(1, options, hash, sv[1], errPipes[1][1], body1); });
  int codes[2] = {c0.wait(options.timeoutMs), c1.wait(options.timeoutMs)};
  std::string failures;
  for (int r = 0; r < 2; ++r) {
    char buf[4096] = {};
    ssize_t n = ::read(errPipes[r][0], buf, sizeof(buf) - 1);
    if (codes[r] != 0)
      failures += "rank " + std::to_string(r) + " (exit " + std::to_string(codes[r]) +
                  "): " + (n > 0 ? std::string(buf, n) : std::string("no message")) + "; ";
    ::close(errPipes[r][0]);
    ::close(errPipes[r][1]);
  }
  ::close(sv[0]);
  ::close(sv[1]);
  return failures.empty() ? Status::ok() : internalError(failures);
}

Status runThreads(const PairOptions& options, const RankBody& body0, const RankBody& body1) {
  uint64_t hash = randomCommHash();
  ThreadBarrier barrier;
  std::unique_ptr<RankEnv> envs[2];
  for (int r = 0; r < 2; ++r) {
    LOOM_ASSIGN_OR_RETURN(envs[r], makeRank(r, 2, hash, testSecret(), options.shm));
    envs[r]->barrier = &barrier;
    envs[r]->sleepWhenIdle = options.sleepWhenIdle;
    envs[r]->spinUs = options.spinUs;
  }
  envs[0]->peerAddress = envs[1]->transport->localAddress();
  envs[1]->peerAddress = envs[0]->transport->localAddress();
  Status results[2];
  std::thread t0([&] { results[0] = body0(*envs[0]); });
  std::thread t1([&] { results[1] = body1(*envs[1]); });
  t0.join();
  t1.join();
  std::string failures;
  for (int r = 0; r < 2; ++r)
    if (!results[r].isOk())
      failures += "rank " + std::to_string(r) + ": " + results[r].toString() + "; ";
  return failures.empty() ? Status::ok() : internalError(failures);
}

}  // namespace

const char* modeName(Mode mode) {
  return mode == Mode::kThreads ? "Threads" : "Processes";
}

Secret testSecret() {
  Secret s;
  for (size_t i = 0; i < s.size(); ++i)
    s[i] = static_cast<uint8_t>(0xa0 + i);
  return s;
}

uint64_t randomCommHash() {
  uint64_t h = 0;
  secureRandom(&h, sizeof(h)).ignoreError();
  return h;
}

Result<std::unique_ptr<RankEnv>> makeRank(int rank, int nranks, uint64_t commHash,
                                          const Secret& secret, const ShmOptions& options) {
  auto env = std::make_unique<RankEnv>();
  env->rank = rank;
  env->config.timeoutMs = kTestTimeoutMs;
  env->options = options;
  env->context.rank = rank;
  env->context.nranks = nranks;
  env->context.commHash = commHash;
  env->context.secret = secret;
  env->context.config = &env->config;
  LOOM_ASSIGN_OR_RETURN(env->context.doorbell, Doorbell::create());
  LOOM_ASSIGN_OR_RETURN(env->transport, createShmTransport(env->context, options));
  return env;
}

Result<Connection*> RankEnv::connect(int lane) {
  LOOM_ASSIGN_OR_RETURN(std::unique_ptr<Connection> c,
                        transport->connect(1 - rank, lane, peerAddress));
  connections.push_back(std::move(c));
  return connections.back().get();
}

Status RankEnv::progressAll() {
  LOOM_RETURN_IF_ERROR(transport->progress());
  for (auto& c : connections)
    LOOM_RETURN_IF_ERROR(c->progress());
  return Status::ok();
}

Status RankEnv::waitFor(const std::function<bool()>& done, int64_t timeoutMs) {
  Deadline deadline = Deadline::afterMs(timeoutMs);
  int64_t spinUntilNs = nowNs() + spinUs * 1000;
  Doorbell* bell = context.doorbell.get();
  for (;;) {
    LOOM_RETURN_IF_ERROR(progressAll());
    if (done()) return Status::ok();
    if (deadline.expired())
      return timeoutError("rank " + std::to_string(rank) + ": wait timed out");
    if (!sleepWhenIdle || nowNs() < spinUntilNs) continue;
    bell->arm();
    Status s = progressAll();
    if (!s.isOk() || done()) {
      bell->disarm();
      return s;
    }
    std::vector<pollfd> fds{pollfd{bell->eventFd(), POLLIN, 0}};
    transport->addPollFds(&fds);
    for (auto& c : connections)
      c->addPollFds(&fds);
    // No periodic wakeup: a lost doorbell ring turns into a deadline failure.
    ::poll(fds.data(), fds.size(), deadline.remainingMs());
    bell->disarm();
    spinUntilNs = nowNs() + spinUs * 1000;
  }
}

Status RankEnv::waitIdle(Connection* c, int64_t timeoutMs) {
  return waitFor(
      [c] {
        return c->sendsCompleted() == c->sendsPosted() && c->recvsCompleted() == c->recvsPosted();
      },
      timeoutMs);
}

Status RankEnv::sync(int64_t timeoutMs) {
  return barrier->arrive(rank, timeoutMs);
}

Status RankEnv::syncProgressing(int64_t timeoutMs) {
  const Deadline deadline = Deadline::afterMs(timeoutMs);
  LOOM_RETURN_IF_ERROR(barrier->post(rank));
  for (;;) {
    // The transport's errors are what the peer is finding out about; they are not ours.
    progressAll().ignoreError();
    LOOM_ASSIGN_OR_RETURN(bool passed, barrier->passed(rank));
    if (passed) return Status::ok();
    if (deadline.expired()) return timeoutError("barrier: the other rank did not arrive");
    std::this_thread::yield();
  }
}

Status runPair(const PairOptions& options, const RankBody& body0, const RankBody& body1) {
  return options.mode == Mode::kThreads ? runThreads(options, body0, body1)
                                        : runProcesses(options, body0, body1);
}

Child::Child(const std::function<int()>& body) {
  pid_ = ::fork();
  if (pid_ == 0) {
    int code = body();
    ::_exit(code);
  }
}

Child::~Child() {
  kill();
}

void Child::kill() {
  if (pid_ <= 0 || reaped_) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  reaped_ = true;
}

int Child::wait(int64_t timeoutMs) {
  if (pid_ <= 0) return -2000;
  Deadline deadline = Deadline::afterMs(timeoutMs);
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    }
    if (deadline.expired()) {
      kill();
      return -1000;
    }
    ::usleep(1000);
  }
}

void fillPattern(uint8_t* data, size_t bytes, uint64_t seed) {
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (size_t i = 0; i < bytes; ++i) {
    if (i % 8 == 0) x = x * 6364136223846793005ull + 1442695040888963407ull;
    data[i] = static_cast<uint8_t>(x >> (8 * (i % 8)));
  }
}

bool checkPattern(const uint8_t* data, size_t bytes, uint64_t seed) {
  std::vector<uint8_t> expected(bytes);
  fillPattern(expected.data(), bytes, seed);
  return bytes == 0 || std::memcmp(data, expected.data(), bytes) == 0;
}

}  // namespace loom::transport::shm::testing
