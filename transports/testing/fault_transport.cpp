#include "transports/testing/fault_transport.h"

#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <deque>
#include <mutex>
#include <set>

#include "base/fd.h"
#include "base/log.h"

namespace loom::transport::fault {

namespace {

class FaultConnection;

// What a transport and its connections share: the crash flag and the live connections.
struct Shared {
  std::mutex mu;
  std::set<FaultConnection*> live;
  std::atomic<bool> crashed{false};
  Status crashError;
};

class FaultConnection final : public Connection {
 public:
  FaultConnection(std::unique_ptr<Connection> inner, std::shared_ptr<Shared> shared,
                  const FaultPlan& plan, int rank)
      : inner_(std::move(inner)), shared_(std::move(shared)), plan_(plan), rank_(rank) {
    timer_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->live.insert(this);
  }
  ~FaultConnection() override {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->live.erase(this);
  }

  int peer() const override { return inner_->peer(); }
  int lane() const override { return inner_->lane(); }

  Status postSend(const void* data, size_t bytes, uint64_t tag) override;
  Status postRecv(void* data, size_t bytes, uint64_t tag) override {
    LOOM_RETURN_IF_ERROR(checkAlive());
    return inner_->postRecv(data, bytes, tag);
  }
  Status progress() override;

  uint64_t sendsPosted() const override { return popped_ + sends_.size(); }
  uint64_t sendsCompleted() const override {
    uint64_t n = popped_;
    const uint64_t innerDone = inner_->sendsCompleted();
    for (const Send& s : sends_) {
      if (!s.dropped && (s.held || s.innerIndex >= innerDone)) break;
      ++n;
    }
    return n;
  }
  uint64_t recvsPosted() const override { return inner_->recvsPosted(); }
  uint64_t recvsCompleted() const override { return inner_->recvsCompleted(); }

  void addPollFds(std::vector<pollfd>* fds) const override {
    inner_->addPollFds(fds);
    if (heldCount_ > 0 && timer_.get() >= 0) fds->push_back({timer_.get(), POLLIN, 0});
  }

  Status close(Deadline deadline) override {
    if (error_.isOk()) releaseHeld(/*force=*/true).ignoreError();
    return inner_->close(deadline);
  }

  // Closes at once (a crash of this rank): pending sends are abandoned.
  void breakNow(const Status& why) {
    if (!error_.isOk()) return;
    error_ = why;
    inner_->close(Deadline::afterMs(0)).ignoreError();
  }

 private:
  struct Send {
    const void* data;
    size_t bytes;
    uint64_t tag;
    int64_t releaseNs = 0;
    bool held = false;
    bool dropped = false;
    uint64_t innerIndex = 0;
  };

  Status checkAlive() {
    if (shared_->crashed.load() && error_.isOk()) breakNow(shared_->crashError);
    return error_;
  }
  std::string where(int64_t index) const {
    return "rank " + std::to_string(rank_) + " -> rank " + std::to_string(peer()) + " lane " +
           std::to_string(lane()) + " message " + std::to_string(index);
  }
  void fired(FaultKind kind) { plan_.counters->fired[static_cast<int>(kind)].fetch_add(1); }
  Status postInner(Send* s);
  Status releaseHeld(bool force);
  void armTimer();
  void crashTransport(const std::string& what);

  std::unique_ptr<Connection> inner_;
  std::shared_ptr<Shared> shared_;
  const FaultPlan& plan_;
  const int rank_;
  UniqueFd timer_;
  std::deque<Send> sends_;  // posted and not yet known complete, in posting order
  uint64_t popped_ = 0;     // sends completed and removed from sends_
  int64_t nextIndex_ = 0;   // the next message's index on this direction
  uint64_t innerPosted_ = 0;
  size_t heldCount_ = 0;
  int64_t lastReleaseNs_ = 0;
  Status error_;
};

Status FaultConnection::postInner(Send* s) {
  s->held = false;
  s->innerIndex = innerPosted_++;
  return inner_->postSend(s->data, s->bytes, s->tag);
}

void FaultConnection::crashTransport(const std::string& what) {
  Status why =
      remoteError("rank " + std::to_string(rank_) + " crashed (fault injected at " + what + ")");
  LOOM_LOG(kWarn, kNet) << "fault injection: " << why.message();
  std::lock_guard<std::mutex> lock(shared_->mu);
  shared_->crashError = why;
  shared_->crashed.store(true);
  for (FaultConnection* c : shared_->live)
    c->breakNow(why);
}

Status FaultConnection::postSend(const void* data, size_t bytes, uint64_t tag) {
  LOOM_RETURN_IF_ERROR(checkAlive());
  const int64_t index = nextIndex_++;
  Send s{data, bytes, tag};
  const FaultRule* rule = plan_.find(rank_, peer(), lane(), index);
  const FaultKind kind = rule ? rule->kind : FaultKind::kDelay;
  const int64_t delayMs = rule && kind == FaultKind::kDelay ? rule->delayMs : 0;
  if (rule) fired(kind);
  if (rule && kind == FaultKind::kKill) {
    std::fprintf(stderr, "fault injection: SIGKILL at %s\n", where(index).c_str());
    std::fflush(stderr);
    ::raise(SIGKILL);
  }
  if (rule && kind == FaultKind::kCrash) {
    crashTransport(where(index));
    return error_;
  }
  if (rule && kind == FaultKind::kClose) {
    breakNow(remoteError("connection " + where(index) + " closed by fault injection"));
    return error_;
  }
  if (rule && kind == FaultKind::kDrop) s.dropped = true;
  if (rule && kind == FaultKind::kShortWrite) {
    if (bytes == 0) {
      s.tag = ~tag;
    } else {
      const size_t cut = rule->shortBytes > 0 ? static_cast<size_t>(rule->shortBytes)
                                              : std::max<size_t>(1, bytes / 2);
      s.bytes = bytes - std::min(bytes, cut);
    }
  }
  if (rule && kind == FaultKind::kCorruptHeader) s.tag = tag ^ 0x5a5a5a5a5a5a5a5aull;
  if (!s.dropped && (delayMs > 0 || heldCount_ > 0)) {
    s.held = true;
    s.releaseNs = std::max(nowNs() + delayMs * 1000000, lastReleaseNs_);
    lastReleaseNs_ = s.releaseNs;
    ++heldCount_;
    sends_.push_back(s);
    armTimer();
    return Status::ok();
  }
  sends_.push_back(s);
  if (s.dropped) return Status::ok();
  return postInner(&sends_.back());
}

Status FaultConnection::releaseHeld(bool force) {
  const int64_t now = nowNs();
  for (Send& s : sends_) {
    if (!s.held) continue;
    if (!force && s.releaseNs > now) break;
    --heldCount_;
    LOOM_RETURN_IF_ERROR(postInner(&s));
  }
  return Status::ok();
}

void FaultConnection::armTimer() {
  for (const Send& s : sends_) {
    if (!s.held) continue;
    itimerspec spec{};
    spec.it_value.tv_sec = s.releaseNs / 1000000000;
    spec.it_value.tv_nsec = s.releaseNs % 1000000000;
    if (timer_.get() >= 0) ::timerfd_settime(timer_.get(), TFD_TIMER_ABSTIME, &spec, nullptr);
    return;
  }
}

Status FaultConnection::progress() {
  LOOM_RETURN_IF_ERROR(checkAlive());
  uint64_t expirations = 0;
  if (timer_.get() >= 0)
    while (::read(timer_.get(), &expirations, sizeof(expirations)) > 0) {
    }
  if (heldCount_ > 0) {
    LOOM_RETURN_IF_ERROR(releaseHeld(/*force=*/false));
    armTimer();
  }
  Status s = inner_->progress();
  if (!s.isOk()) return s;
  const uint64_t innerDone = inner_->sendsCompleted();
  while (!sends_.empty()) {
    const Send& f = sends_.front();
    if (!f.dropped && (f.held || f.innerIndex >= innerDone)) break;
    sends_.pop_front();
    ++popped_;
  }
  return Status::ok();
}

class FaultTransport final : public Transport {
 public:
  FaultTransport(std::unique_ptr<Transport> inner, int rank, FaultPlan plan)
      : inner_(std::move(inner)), rank_(rank), plan_(std::move(plan)) {}

  const Capabilities& capabilities() const override { return inner_->capabilities(); }
  std::string localAddress() const override { return inner_->localAddress(); }

  Result<std::unique_ptr<Connection>> connect(int peer, int lane,
                                              const std::string& peerAddress) override {
    LOOM_ASSIGN_OR_RETURN(std::unique_ptr<Connection> c, inner_->connect(peer, lane, peerAddress));
    return std::unique_ptr<Connection>(
        std::make_unique<FaultConnection>(std::move(c), shared_, plan_, rank_));
  }
  Status progress() override {
    if (shared_->crashed.load()) {
      std::lock_guard<std::mutex> lock(shared_->mu);
      return shared_->crashError;
    }
    return inner_->progress();
  }
  void addPollFds(std::vector<pollfd>* fds) const override { inner_->addPollFds(fds); }

 private:
  std::unique_ptr<Transport> inner_;
  const int rank_;
  const FaultPlan plan_;
  std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
};

}  // namespace

std::unique_ptr<Transport> wrapWithFaults(std::unique_ptr<Transport> inner,
                                          const TransportContext& context, FaultPlan plan) {
  return std::make_unique<FaultTransport>(std::move(inner), context.rank, std::move(plan));
}

}  // namespace loom::transport::fault
