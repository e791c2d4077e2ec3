// TcpStoreServer: the poll() loop. One thread owns every piece of state below; the public
// methods reach it only through atomics, the wake eventfd and stateMu.
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "base/log.h"
#include "base/random.h"
#include "bootstrap/tcp_store.h"
#include "bootstrap/tcp_store_wire.h"

namespace loom::bootstrap {

namespace {

constexpr int kTickMs = 100;
constexpr size_t kReadChunkBytes = 64 * 1024;
constexpr int kMaxDropWarnings = 20;
constexpr size_t kMaxParkedGetsPerClient = 64;
constexpr int64_t kAcceptPauseNs = 100 * 1000000;

struct Conn {
  uint64_t id = 0;
  UniqueFd fd;
  std::string peer;  // "1.2.3.4:5"
  enum class Phase { kHandshake, kReady, kClosing } phase = Phase::kHandshake;
  wire::Nonce challenge{};
  int rank = -1;
  int64_t handshakeDeadlineNs = 0;
  std::vector<uint8_t> rbuf;
  size_t roff = 0;
  std::vector<uint8_t> wbuf;
  size_t woff = 0;
  size_t parkedGets = 0;
  bool dead = false;
};

}  // namespace

struct TcpStoreServer::Loop {
  Loop(UniqueFd listener, UniqueFd wake, SocketAddress addr, Secret secret, Options options)
      : listenFd(std::move(listener)),
        wakeFd(std::move(wake)),
        name("rendezvous root " + addr.toString()),
        secret(secret),
        options(options),
        idleSinceNs(nowNs()) {}

  void run();
  void acceptAll();
  void onReadable(Conn* c);
  void readHello(Conn* c);
  void readFrames(Conn* c);
  void handle(Conn* c, const wire::RequestView& r);
  void reply(Conn* c, wire::ReplyStatus status, uint64_t id, const uint8_t* p, size_t n);
  void flush(Conn* c);
  void wakeWaiters(const std::string& key);
  void forgetWaiter(uint64_t connId, uint64_t reqId);
  void drop(Conn* c, const std::string& why);
  void sweep();
  bool lifetimeOver();
  void finish(State s);

  UniqueFd listenFd;
  UniqueFd wakeFd;
  std::string name;
  Secret secret;
  Options options;

  std::map<uint64_t, std::unique_ptr<Conn>> conns;
  uint64_t nextConnId = 1;
  std::map<std::string, Bytes> data;
  // key -> parked GETs (connection id, request id), in arrival order.
  std::map<std::string, std::vector<std::pair<uint64_t, uint64_t>>> waiters;
  int jobNranks = -1;
  std::set<int> registered;
  size_t readyConns = 0;
  int64_t idleSinceNs;
  int64_t acceptPausedUntilNs = 0;
  int dropWarnings = 0;

  std::atomic<bool> stopRequested{false};
  std::atomic<size_t> connected{0};
  std::atomic<size_t> dropped{0};
  mutable std::mutex stateMu;
  mutable std::condition_variable stateCv;
  State state = State::kRunning;
};

void TcpStoreServer::Loop::run() {
  std::vector<pollfd> fds;
  std::vector<Conn*> order;
  while (!stopRequested.load()) {
    fds.clear();
    order.clear();
    fds.push_back({wakeFd.get(), POLLIN, 0});
    // The listener stays polled past maxClients so that excess connections are closed at once
    // (the client then fails fast) instead of waiting in the backlog.
    bool listening = nowNs() >= acceptPausedUntilNs;
    if (listening) fds.push_back({listenFd.get(), POLLIN, 0});
    size_t firstConn = fds.size();
    for (auto& [id, c] : conns) {
      short ev = c->phase == Conn::Phase::kClosing ? 0 : POLLIN;
      if (c->woff < c->wbuf.size()) ev |= POLLOUT;
      fds.push_back({c->fd.get(), ev, 0});
      order.push_back(c.get());
    }
    int rc = ::poll(fds.data(), fds.size(), kTickMs);
    if (rc < 0 && errno != EINTR) {
      LOOM_LOG(kWarn, kBootstrap) << name << ": poll failed (" << std::strerror(errno)
                                  << "); stopping";
      finish(State::kFailed);
      return;
    }
    if (rc > 0) {
      if (listening && (fds[1].revents & POLLIN)) acceptAll();
      for (size_t i = firstConn; i < fds.size(); ++i) {
        Conn* c = order[i - firstConn];
        if (c->dead) continue;
        if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) onReadable(c);
        if (!c->dead && (fds[i].revents & POLLOUT)) flush(c);
      }
    }
    int64_t now = nowNs();
    for (auto& [id, c] : conns)
      if (c->phase == Conn::Phase::kHandshake && now > c->handshakeDeadlineNs)
        drop(c.get(), "did not complete the handshake within " +
                          std::to_string(options.handshakeTimeoutMs) + " ms");
    sweep();
    if (lifetimeOver()) return;
  }
  finish(State::kStopped);
}

void TcpStoreServer::Loop::acceptAll() {
  for (;;) {
    sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = ::accept4(listenFd.get(), reinterpret_cast<sockaddr*>(&ss), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        LOOM_LOG(kWarn, kBootstrap) << name << ": cannot accept more connections ("
                                    << std::strerror(errno) << "); raise the open-file limit";
        acceptPausedUntilNs = nowNs() + kAcceptPauseNs;
      }
      return;  // EAGAIN: nothing more to accept
    }
    auto c = std::make_unique<Conn>();
    c->id = nextConnId++;
    c->fd.reset(fd);
    Result<SocketAddress> peer = SocketAddress::fromRaw(reinterpret_cast<sockaddr*>(&ss), len);
    c->peer = peer.isOk() ? peer->toString() : "an unknown address";
    if (conns.size() >= options.maxClients) {
      // Closed before the greeting: the client reports "closed before the handshake".
      dropped.fetch_add(1);
      LOOM_LOG(kWarn, kBootstrap) << name << ": refused a connection from " << c->peer
                                  << ": already serving " << conns.size()
                                  << " connections (the limit)";
      continue;
    }
    setNoDelay(fd).ignoreError();  // replies are small and latency-bound
    c->handshakeDeadlineNs = nowNs() + options.handshakeTimeoutMs * 1000000;
    if (!secureRandom(c->challenge.data(), c->challenge.size()).isOk()) continue;
    auto hello = wire::encodeServerHello(c->challenge);
    c->wbuf.assign(hello.begin(), hello.end());
    Conn* raw = c.get();
    conns.emplace(raw->id, std::move(c));
    flush(raw);
  }
}

void TcpStoreServer::Loop::onReadable(Conn* c) {
  if (c->phase == Conn::Phase::kHandshake)
    readHello(c);
  else if (c->phase == Conn::Phase::kReady)
    readFrames(c);
  else
    flush(c);  // closing: only waiting for the Welcome to drain
}

void TcpStoreServer::Loop::readHello(Conn* c) {
  while (c->rbuf.size() < wire::kClientHelloBytes) {
    uint8_t buf[wire::kClientHelloBytes];
    ssize_t n = ::recv(c->fd.get(), buf, wire::kClientHelloBytes - c->rbuf.size(), 0);
    if (n > 0) {
      c->rbuf.insert(c->rbuf.end(), buf, buf + n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    drop(c, "closed the connection before completing the handshake (" +
                std::to_string(c->rbuf.size()) + " of " + std::to_string(wire::kClientHelloBytes) +
                " bytes)");
    return;
  }
  const uint8_t* h = c->rbuf.data();
  if (std::memcmp(h, wire::kClientMagic, 8) != 0)
    return drop(c,
                "sent something that is not a loom store hello (a port scanner or another "
                "protocol?)");
  wire::Nonce clientChallenge;
  std::memcpy(clientChallenge.data(), h + 8, 16);
  int32_t rank = static_cast<int32_t>(wire::getU32(h + 24));
  int32_t nranks = static_cast<int32_t>(wire::getU32(h + 28));
  Digest proof;
  std::memcpy(proof.data(), h + 32, proof.size());
  if (!digestEqual(proof, wire::clientProof(secret, c->challenge, clientChallenge, rank, nranks)))
    return drop(c,
                "failed the unique-id proof (a rank of a stale job or of another job, or a "
                "wrong secret)");
  c->rbuf.clear();
  wire::WelcomeCode code = wire::WelcomeCode::kOk;
  if (nranks <= 0 || rank < 0 || rank >= nranks) {
    code = wire::WelcomeCode::kBadRank;
  } else if (jobNranks > 0 && nranks != jobNranks) {
    code = wire::WelcomeCode::kNranksMismatch;
    LOOM_LOG(kWarn, kBootstrap) << name << ": rank " << rank << " (" << c->peer
                                << ") says the job has " << nranks << " ranks, but earlier ranks "
                                << "said " << jobNranks << "; refusing it";
  }
  auto welcome = wire::encodeWelcome(secret, clientChallenge, c->challenge, code,
                                     jobNranks > 0 ? jobNranks : nranks);
  c->wbuf.insert(c->wbuf.end(), welcome.begin(), welcome.end());
  if (code != wire::WelcomeCode::kOk) {
    c->phase = Conn::Phase::kClosing;
  } else {
    c->phase = Conn::Phase::kReady;
    c->rank = rank;
    jobNranks = nranks;
    registered.insert(rank);
    ++readyConns;
    connected.store(readyConns);
    LOOM_LOG(kTrace, kBootstrap) << name << ": rank " << rank << " of " << nranks
                                 << " connected from " << c->peer;
  }
  flush(c);
}

void TcpStoreServer::Loop::readFrames(Conn* c) {
  for (;;) {
    // Parse every whole frame buffered so far; the length is validated the moment it is known,
    // before the buffer grows to hold the body.
    while (c->rbuf.size() - c->roff >= 4) {
      uint32_t len = wire::getU32(c->rbuf.data() + c->roff);
      if (len < wire::kRequestHeaderBytes || len > wire::kMaxRequestBody)
        return drop(c, "sent a request of " + std::to_string(len) + " bytes (limit " +
                           std::to_string(wire::kMaxRequestBody) + ")");
      if (c->rbuf.size() - c->roff < 4 + size_t{len}) {
        c->rbuf.reserve(c->roff + 4 + len);
        break;
      }
      Result<wire::RequestView> r = wire::parseRequest(c->rbuf.data() + c->roff + 4, len);
      if (!r.isOk()) return drop(c, "sent a malformed request: " + r.status().message());
      handle(c, *r);
      if (c->dead) return;
      c->roff += 4 + size_t{len};
    }
    if (c->roff == c->rbuf.size()) {
      c->rbuf.clear();
      c->roff = 0;
    } else if (c->roff > 0) {
      c->rbuf.erase(c->rbuf.begin(), c->rbuf.begin() + static_cast<ptrdiff_t>(c->roff));
      c->roff = 0;
    }
    size_t at = c->rbuf.size();
    c->rbuf.resize(at + kReadChunkBytes);
    ssize_t n = ::recv(c->fd.get(), c->rbuf.data() + at, kReadChunkBytes, 0);
    c->rbuf.resize(at + (n > 0 ? static_cast<size_t>(n) : 0));
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    // An orderly close is how a rank leaves; not worth a warning.
    LOOM_LOG(kTrace, kBootstrap) << name << ": rank " << c->rank << " (" << c->peer
                                 << ") disconnected";
    c->dead = true;
    return;
  }
}

void TcpStoreServer::Loop::handle(Conn* c, const wire::RequestView& r) {
  using wire::Op;
  using wire::ReplyStatus;
  std::string key(r.key);
  switch (r.op) {
    case Op::kSet:
      data[key].assign(r.value, r.value + r.valueBytes);
      reply(c, ReplyStatus::kOk, r.id, nullptr, 0);
      wakeWaiters(key);
      return;
    case Op::kGet: {
      auto it = data.find(key);
      if (it != data.end())
        return reply(c, ReplyStatus::kOk, r.id, it->second.data(), it->second.size());
      if (c->parkedGets >= kMaxParkedGetsPerClient)
        return drop(c,
                    "has more than " + std::to_string(kMaxParkedGetsPerClient) + " GETs waiting");
      waiters[key].emplace_back(c->id, r.id);
      ++c->parkedGets;
      return;
    }
    case Op::kTryGet: {
      auto it = data.find(key);
      if (it == data.end()) return reply(c, ReplyStatus::kNotFound, r.id, nullptr, 0);
      return reply(c, ReplyStatus::kOk, r.id, it->second.data(), it->second.size());
    }
    case Op::kAdd: {
      // Stored in host byte order, as InMemoryStore does, so both stores read alike.
      int64_t value = 0;
      Bytes& b = data[key];
      if (b.size() == sizeof(value)) std::memcpy(&value, b.data(), sizeof(value));
      value += static_cast<int64_t>(wire::getU64(r.value));
      b.resize(sizeof(value));
      std::memcpy(b.data(), &value, sizeof(value));
      uint8_t out[8];
      wire::putU64(out, static_cast<uint64_t>(value));
      reply(c, ReplyStatus::kOk, r.id, out, sizeof(out));
      wakeWaiters(key);
      return;
    }
    case Op::kErasePrefix:
      for (auto it = data.lower_bound(key); it != data.end() && it->first.rfind(key, 0) == 0;)
        it = data.erase(it);
      return reply(c, ReplyStatus::kOk, r.id, nullptr, 0);
    case Op::kCancel:
      return forgetWaiter(c->id, r.id);
  }
}

void TcpStoreServer::Loop::reply(Conn* c, wire::ReplyStatus status, uint64_t id, const uint8_t* p,
                                 size_t n) {
  wire::appendReply(&c->wbuf, status, id, p, n);
  if (c->wbuf.size() - c->woff > options.maxQueuedReplyBytes)
    return drop(c, "does not read its replies (more than " +
                       std::to_string(options.maxQueuedReplyBytes) + " bytes queued)");
  flush(c);
}

void TcpStoreServer::Loop::flush(Conn* c) {
  while (c->woff < c->wbuf.size()) {
    ssize_t n = ::send(c->fd.get(), c->wbuf.data() + c->woff, c->wbuf.size() - c->woff,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c->woff += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    c->dead = true;  // the peer is gone; its read side reports it
    return;
  }
  if (c->woff == c->wbuf.size()) {
    c->wbuf.clear();
    c->woff = 0;
    if (c->phase == Conn::Phase::kClosing) c->dead = true;
  } else if (c->woff > (1u << 20) && c->woff > c->wbuf.size() / 2) {
    c->wbuf.erase(c->wbuf.begin(), c->wbuf.begin() + static_cast<ptrdiff_t>(c->woff));
    c->woff = 0;
  }
}

void TcpStoreServer::Loop::wakeWaiters(const std::string& key) {
  auto w = waiters.find(key);
  if (w == waiters.end()) return;
  std::vector<std::pair<uint64_t, uint64_t>> parked = std::move(w->second);
  waiters.erase(w);
  const Bytes& value = data[key];
  for (auto [connId, reqId] : parked) {
    auto it = conns.find(connId);
    if (it == conns.end() || it->second->dead) continue;
    --it->second->parkedGets;
    reply(it->second.get(), wire::ReplyStatus::kOk, reqId, value.data(), value.size());
  }
}

void TcpStoreServer::Loop::forgetWaiter(uint64_t connId, uint64_t reqId) {
  for (auto it = waiters.begin(); it != waiters.end();) {
    auto& v = it->second;
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i].first != connId || (reqId != 0 && v[i].second != reqId)) continue;
      auto c = conns.find(connId);
      if (c != conns.end()) --c->second->parkedGets;
      v.erase(v.begin() + static_cast<ptrdiff_t>(i));
      --i;
    }
    it = v.empty() ? waiters.erase(it) : std::next(it);
  }
}

void TcpStoreServer::Loop::drop(Conn* c, const std::string& why) {
  if (c->dead) return;
  c->dead = true;
  dropped.fetch_add(1);
  // Rate-limited: a port scanner must not be able to flood the log.
  if (dropWarnings < kMaxDropWarnings) {
    std::string who = c->rank >= 0 ? "rank " + std::to_string(c->rank) + " (" + c->peer + ")"
                                   : "the connection from " + c->peer;
    LOOM_LOG(kWarn, kBootstrap) << name << ": dropped " << who << ": it " << why;
  } else if (dropWarnings == kMaxDropWarnings) {
    LOOM_LOG(kWarn, kBootstrap) << name << ": further dropped connections are not logged";
  }
  ++dropWarnings;
}

void TcpStoreServer::Loop::sweep() {
  for (auto it = conns.begin(); it != conns.end();) {
    Conn* c = it->second.get();
    if (!c->dead) {
      ++it;
      continue;
    }
    if (c->phase == Conn::Phase::kReady) {
      if (--readyConns == 0) idleSinceNs = nowNs();
      connected.store(readyConns);
      if (c->parkedGets > 0) forgetWaiter(c->id, 0);
    }
    it = conns.erase(it);
  }
}

bool TcpStoreServer::Loop::lifetimeOver() {
  if (readyConns > 0) return false;
  if (jobNranks > 0 && registered.size() >= static_cast<size_t>(jobNranks)) {
    LOOM_LOG(kInfo, kBootstrap) << name << ": all " << jobNranks
                                << " ranks have come and gone; stopping";
    finish(State::kFinished);
    return true;
  }
  if (nowNs() - idleSinceNs > options.idleTimeoutMs * 1000000) {
    LOOM_LOG(kWarn, kBootstrap) << name << ": no rank connected for " << options.idleTimeoutMs
                                << " ms (" << registered.size() << " of "
                                << (jobNranks > 0 ? std::to_string(jobNranks) : "?")
                                << " ranks ever registered); stopping";
    finish(State::kIdle);
    return true;
  }
  return false;
}

void TcpStoreServer::Loop::finish(State s) {
  conns.clear();  // closes every connection: clients see the root go away
  listenFd.reset();
  connected.store(0);
  {
    std::lock_guard<std::mutex> lock(stateMu);
    state = s;
  }
  stateCv.notify_all();
}

Result<std::shared_ptr<TcpStoreServer>> TcpStoreServer::start(SocketAddress bind, Secret secret,
                                                              Options options) {
  Result<UniqueFd> listener = listenTcp(&bind, 1024);
  if (!listener.isOk())
    return listener.status().withContext("cannot start the rendezvous root at " + bind.toString());
  LOOM_RETURN_IF_ERROR(setNonBlocking(listener->get(), true));
  UniqueFd wake(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake.valid()) return systemErrorFromErrno("eventfd", errno);
  std::shared_ptr<TcpStoreServer> server(new TcpStoreServer());
  server->address_ = bind;
  server->ownerPid_ = ::getpid();
  server->loop_ =
      std::make_unique<Loop>(std::move(listener).value(), std::move(wake), bind, secret, options);
  server->thread_ = std::thread([loop = server->loop_.get()] { loop->run(); });
  LOOM_LOG(kInfo, kBootstrap) << "rendezvous root listening at " << bind.toString();
  return server;
}

TcpStoreServer::~TcpStoreServer() {
  stop();
}

void TcpStoreServer::stop() {
  std::lock_guard<std::mutex> lock(joinMu_);
  if (!thread_.joinable()) return;
  if (::getpid() != ownerPid_) {
    // A fork()ed child holds a copy of this object but not the thread: joining would hang and
    // destroying a joinable std::thread would terminate, so the handle is abandoned.
    new std::thread(std::move(thread_));
    return;
  }
  loop_->stopRequested.store(true);
  uint64_t one = 1;
  ssize_t ignored = ::write(loop_->wakeFd.get(), &one, sizeof(one));
  (void)ignored;
  thread_.join();
}

TcpStoreServer::State TcpStoreServer::state() const {
  std::lock_guard<std::mutex> lock(loop_->stateMu);
  return loop_->state;
}

bool TcpStoreServer::waitStopped(Deadline deadline) const {
  std::unique_lock<std::mutex> lock(loop_->stateMu);
  while (loop_->state == State::kRunning) {
    int ms = deadline.remainingMs();
    if (ms == 0) return false;
    loop_->stateCv.wait_for(lock, std::chrono::milliseconds(ms < 100 ? ms : 100));
  }
  return true;
}

size_t TcpStoreServer::connectedClients() const {
  return loop_->connected.load();
}
size_t TcpStoreServer::droppedConnections() const {
  return loop_->dropped.load();
}

}  // namespace loom::bootstrap
