#include "transports/shm/handshake.h"

#include <sys/timerfd.h>
#include <unistd.h>

#include <cstring>

#include "base/log.h"
#include "base/random.h"
#include "base/sha256.h"
#include "transports/shm/packet_socket.h"
#include "transports/shm/single_copy.h"

namespace loom::transport::shm {

namespace {

constexpr size_t kEndpointFds = 3;
constexpr size_t kMaxInflightAccepts = 1024;
constexpr int kMaxAcceptsPerProgress = 64;
constexpr int64_t kMinBackoffNs = 1000000;   // 1 ms
constexpr int64_t kMaxBackoffNs = 50000000;  // 50 ms

Digest computeMac(const Identity& id, const char* label, const HelloMsg& hello,
                  const uint8_t nonce[16]) {
  size_t labelBytes = std::strlen(label);
  std::vector<uint8_t> msg(labelBytes + sizeof(hello) + 16);
  std::memcpy(msg.data(), label, labelBytes);
  std::memcpy(msg.data() + labelBytes, &hello, sizeof(hello));
  std::memcpy(msg.data() + labelBytes + sizeof(hello), nonce, 16);
  return hmacSha256(id.secret.data(), id.secret.size(), msg.data(), msg.size());
}

bool macMatches(const uint8_t mac[32], const Digest& expected) {
  Digest seen;
  std::memcpy(seen.data(), mac, seen.size());
  return digestEqual(seen, expected);
}

Status sendEndpoint(int sock, const LocalEndpoint& local, const Digest* mac,
                    const std::string& peer, bool farewell = false) {
  EndpointMsg msg{};
  msg.magic = kMagic;
  if (mac) std::memcpy(msg.mac, mac->data(), sizeof(msg.mac));
  msg.slotBytes = local.geometry.slotBytes;
  msg.slotCount = local.geometry.slotCount;
  msg.probeAddress = local.probeAddress;
  msg.probeCookie = local.probeCookie;
  msg.directToken = local.directToken;
  msg.pid = static_cast<int32_t>(::getpid());
  if (farewell) {
    msg.flags = kEndpointFarewell;
    return sendPacket(sock, &msg, sizeof(msg), {}, peer);
  }
  return sendPacket(sock, &msg, sizeof(msg), {local.ringFd, local.bellEventFd, local.bellMemFd},
                    peer);
}

// Why a Hello is refused; empty when it is acceptable.
std::string checkHello(const HelloMsg& h, const Identity& id) {
  if (h.magic != kMagic || h.version != kProtocolVersion) return "not a loom shm handshake";
  if (h.commHash != id.commHash) return "different communicator";
  if (h.toRank != id.rank) return "addressed to rank " + std::to_string(h.toRank);
  if (h.fromRank < 0 || h.fromRank >= id.rank) return "bad rank " + std::to_string(h.fromRank);
  if (h.lane < 0 || h.lane >= kMaxLanes) return "bad lane " + std::to_string(h.lane);
  return {};
}

}  // namespace

// ---- Acceptor -----------------------------------------------------------------------------

struct Acceptor::Inbound {
  enum class State { kAwaitHello, kAwaitEndpoint } state = State::kAwaitHello;
  UniqueFd socket;
  pid_t pid = 0;
  int64_t deadlineNs = 0;
  HelloMsg hello{};
  uint8_t nonce[16] = {};

  std::string name() const { return "pid " + std::to_string(pid); }
};

Result<std::shared_ptr<Acceptor>> Acceptor::create(const Identity& identity,
                                                   const std::string& name) {
  std::shared_ptr<Acceptor> a(new Acceptor(identity));
  LOOM_RETURN_IF_ERROR(secureRandom(&a->probeCookie_, sizeof(a->probeCookie_)));
  LOOM_ASSIGN_OR_RETURN(a->listen_, listenPacket(name));
  return a;
}

Acceptor::Acceptor(const Identity& identity) : identity_(identity) {}

Acceptor::~Acceptor() = default;

Status Acceptor::progress() {
  for (int i = 0; i < kMaxAcceptsPerProgress && inflight_.size() < kMaxInflightAccepts; ++i) {
    LOOM_ASSIGN_OR_RETURN(UniqueFd fd, acceptPacket(listen_.get()));
    if (!fd.valid()) break;
    auto in = std::make_unique<Inbound>();
    Result<pid_t> pid = peerPid(fd.get());
    in->pid = pid.isOk() ? *pid : 0;
    in->socket = std::move(fd);
    in->deadlineNs = nowNs() + identity_.timeoutMs * 1000000;
    inflight_.push_back(std::move(in));
  }
  for (size_t i = 0; i < inflight_.size();) {
    if (step(inflight_[i].get())) {
      ++i;
    } else {
      inflight_[i] = std::move(inflight_.back());
      inflight_.pop_back();
    }
  }
  progressFarewells();
  return Status::ok();
}

bool Acceptor::step(Inbound* in) {
  bool keep = in->state == Inbound::State::kAwaitHello ? onHello(in) : onEndpoint(in);
  if (keep && nowNs() > in->deadlineNs) {
    LOOM_LOG(kWarn, kShm) << "rank " << identity_.rank
                          << " dropped a shared-memory connection from " << in->name()
                          << ": handshake not finished within " << identity_.timeoutMs << " ms";
    return false;
  }
  return keep;
}

bool Acceptor::onHello(Inbound* in) {
  std::vector<UniqueFd> fds;
  RecvState state;
  Status s =
      recvPacket(in->socket.get(), &in->hello, sizeof(in->hello), &fds, 0, in->name(), &state);
  if (s.isOk() && state == RecvState::kWouldBlock) return true;
  std::string why = !s.isOk()                     ? s.message()
                    : state == RecvState::kClosed ? "closed before saying hello"
                                                  : checkHello(in->hello, identity_);
  if (why.empty() && abandoned_.count({in->hello.fromRank, in->hello.lane})) {
    ChallengeMsg closed{};  // no secret is proven either way: it only says "closed"
    closed.magic = kMagicClosed;
    sendPacket(in->socket.get(), &closed, sizeof(closed), {}, in->name()).ignoreError();
    return false;
  }
  if (why.empty()) {
    ChallengeMsg challenge{};
    challenge.magic = kMagic;
    s = secureRandom(in->nonce, sizeof(in->nonce));
    std::memcpy(challenge.nonce, in->nonce, sizeof(in->nonce));
    Digest mac = computeMac(identity_, "loom-shm-accept", in->hello, in->nonce);
    std::memcpy(challenge.mac, mac.data(), mac.size());
    challenge.probeAddress = reinterpret_cast<uintptr_t>(&probeCookie_);
    challenge.probeCookie = probeCookie_;
    if (s.isOk()) s = sendPacket(in->socket.get(), &challenge, sizeof(challenge), {}, in->name());
    if (s.isOk()) {
      in->state = Inbound::State::kAwaitEndpoint;
      return true;
    }
    why = s.message();
  }
  LOOM_LOG(kWarn, kShm) << "rank " << identity_.rank << " rejected a shared-memory connection from "
                        << in->name() << ": " << why;
  return false;
}

bool Acceptor::onEndpoint(Inbound* in) {
  Established e;
  RecvState state;
  std::vector<UniqueFd> fds;
  Status s = recvPacket(in->socket.get(), &e.endpoint, sizeof(e.endpoint), &fds, kEndpointFds,
                        in->name(), &state);
  if (s.isOk() && state == RecvState::kWouldBlock) return true;
  std::string why;
  if (!s.isOk()) {
    why = s.message();
  } else if (state == RecvState::kClosed) {
    why = "closed during the handshake";
  } else if (e.endpoint.magic != kMagic ||
             !macMatches(e.endpoint.mac,
                         computeMac(identity_, "loom-shm-connect", in->hello, in->nonce))) {
    why = "it failed to prove the job secret (claimed rank " + std::to_string(in->hello.fromRank) +
          ")";
  } else if (e.endpoint.flags & kEndpointFarewell) {
    if (!fds.empty()) why = "sent descriptors with a farewell";
    e.farewell = true;
  } else if (fds.size() != kEndpointFds) {
    why = "sent " + std::to_string(fds.size()) + " descriptors instead of 3";
  }
  if (!why.empty()) {
    LOOM_LOG(kWarn, kShm) << "rank " << identity_.rank
                          << " rejected a shared-memory connection from " << in->name() << ": "
                          << why;
    return false;
  }
  e.socket = std::move(in->socket);
  e.pid = in->pid;
  if (!e.farewell) {
    e.ringFd = std::move(fds[0]);
    e.bellEventFd = std::move(fds[1]);
    e.bellMemFd = std::move(fds[2]);
  }
  parked_[{in->hello.fromRank, in->hello.lane}].push_back(std::move(e));
  return false;
}

void Acceptor::addPollFds(std::vector<pollfd>* fds) const {
  fds->push_back(pollfd{listen_.get(), POLLIN, 0});
  for (const auto& in : inflight_)
    fds->push_back(pollfd{in->socket.get(), POLLIN, 0});
  for (const auto& f : farewells_)
    f->addPollFds(fds);
}

std::optional<Established> Acceptor::take(int peer, int lane) {
  auto it = parked_.find({peer, lane});
  if (it == parked_.end()) return std::nullopt;
  Established e = std::move(it->second.front());
  it->second.pop_front();
  if (it->second.empty()) parked_.erase(it);
  return e;
}

bool probeAndRecord(pid_t pid, uint64_t address, uint64_t cookie, const LocalEndpoint& local) {
  if (!local.offerCma || pid == ::getpid() || !probeCma(pid, address, cookie)) return false;
  local.control->consumerReadsCma.store(1, std::memory_order_release);
  return true;
}

void Acceptor::addFarewell(std::unique_ptr<Connector> farewell) {
  farewells_.push_back(std::move(farewell));
}

// Farewells are best effort: one that fails (the peer is gone, or closed too) is dropped.
void Acceptor::progressFarewells() {
  for (size_t i = 0; i < farewells_.size();) {
    std::optional<Established> unused;
    Status s = farewells_[i]->progress(LocalEndpoint(), &unused);
    if (s.isOk() && !farewells_[i]->finished()) {
      ++i;
      continue;
    }
    farewells_[i] = std::move(farewells_.back());
    farewells_.pop_back();
  }
}

void Acceptor::abandon(int peer, int lane) {
  abandoned_.insert({peer, lane});
  parked_.erase({peer, lane});  // closing their sockets tells those connectors
}

Status sendWelcome(int socket, const LocalEndpoint& local, const std::string& peer) {
  return sendEndpoint(socket, local, nullptr, peer);
}

// ---- Connector ----------------------------------------------------------------------------

Connector::Connector(const Identity& identity, int peer, int lane, std::string address,
                     bool farewell)
    : identity_(identity),
      peer_(peer),
      lane_(lane),
      address_(std::move(address)),
      farewell_(farewell),
      deadline_(Deadline::afterMs(identity.timeoutMs)) {}

Connector::~Connector() = default;

std::string Connector::peerName() const {
  return "rank " + std::to_string(peer_) + " (@" + address_ + ")";
}

Status Connector::progress(const LocalEndpoint& local, std::optional<Established>* done) {
  if (state_ == State::kConnect) LOOM_RETURN_IF_ERROR(tryConnect());
  if (state_ == State::kAwaitChallenge) LOOM_RETURN_IF_ERROR(onChallenge(local));
  if (state_ == State::kAwaitWelcome) LOOM_RETURN_IF_ERROR(onWelcome(done));
  if (state_ != State::kDone && deadline_.expired())
    return timeoutError("shared-memory handshake with " + peerName() + " not finished within " +
                        std::to_string(identity_.timeoutMs) + " ms");
  return Status::ok();
}

Status Connector::tryConnect() {
  if (nowNs() < retryAtNs_) return Status::ok();
  ConnectState state;
  LOOM_RETURN_IF_ERROR(connectPacket(address_, &socket_, &state));
  if (state == ConnectState::kRetry) {
    backoffNs_ = backoffNs_ == 0 ? kMinBackoffNs : std::min(backoffNs_ * 2, kMaxBackoffNs);
    armRetryTimer(nowNs() + backoffNs_);
    return Status::ok();
  }
  retryTimer_.reset();
  hello_ = HelloMsg{};
  hello_.magic = kMagic;
  hello_.version = kProtocolVersion;
  hello_.fromRank = identity_.rank;
  hello_.toRank = peer_;
  hello_.lane = lane_;
  hello_.commHash = identity_.commHash;
  LOOM_RETURN_IF_ERROR(secureRandom(hello_.nonce, sizeof(hello_.nonce)));
  LOOM_RETURN_IF_ERROR(sendPacket(socket_.get(), &hello_, sizeof(hello_), {}, peerName()));
  state_ = State::kAwaitChallenge;
  return Status::ok();
}

void Connector::armRetryTimer(int64_t atNs) {
  retryAtNs_ = atNs;
  if (!retryTimer_.valid())
    retryTimer_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!retryTimer_.valid()) return;  // the driver then wakes on its own deadline instead
  itimerspec spec{};
  spec.it_value.tv_sec = atNs / 1000000000;
  spec.it_value.tv_nsec = atNs % 1000000000;
  ::timerfd_settime(retryTimer_.get(), TFD_TIMER_ABSTIME, &spec, nullptr);
}

Status Connector::onChallenge(const LocalEndpoint& local) {
  ChallengeMsg challenge{};
  std::vector<UniqueFd> fds;
  RecvState state;
  LOOM_RETURN_IF_ERROR(
      recvPacket(socket_.get(), &challenge, sizeof(challenge), &fds, 0, peerName(), &state));
  if (state == RecvState::kWouldBlock) return Status::ok();
  if (state == RecvState::kClosed)
    return remoteError(peerName() + " refused the shared-memory handshake (different job " +
                       "secret or communicator?)");
  if (challenge.magic == kMagicClosed)
    return remoteError(peerName() + " closed its end of the shared-memory connection before " +
                       "it was established");
  if (challenge.magic != kMagic ||
      !macMatches(challenge.mac, computeMac(identity_, "loom-shm-accept", hello_, challenge.nonce)))
    return remoteError("the process listening as " + peerName() +
                       " failed to prove the job secret; not sharing memory with it");
  if (farewell_) {
    Digest mac = computeMac(identity_, "loom-shm-connect", hello_, challenge.nonce);
    LOOM_RETURN_IF_ERROR(sendEndpoint(socket_.get(), local, &mac, peerName(), true));
    state_ = State::kDone;
    return Status::ok();
  }
  LOOM_ASSIGN_OR_RETURN(pid_, peerPid(socket_.get()));
  // Before our ring is handed over, so the peer's first large send sees the result.
  readsCma_ = probeAndRecord(pid_, challenge.probeAddress, challenge.probeCookie, local);
  Digest mac = computeMac(identity_, "loom-shm-connect", hello_, challenge.nonce);
  LOOM_RETURN_IF_ERROR(sendEndpoint(socket_.get(), local, &mac, peerName()));
  state_ = State::kAwaitWelcome;
  return Status::ok();
}

Status Connector::onWelcome(std::optional<Established>* done) {
  Established e;
  std::vector<UniqueFd> fds;
  RecvState state;
  LOOM_RETURN_IF_ERROR(recvPacket(socket_.get(), &e.endpoint, sizeof(e.endpoint), &fds,
                                  kEndpointFds, peerName(), &state));
  if (state == RecvState::kWouldBlock) return Status::ok();
  if (state == RecvState::kClosed)
    return remoteError(peerName() + " closed the connection during the shared-memory handshake");
  if (e.endpoint.magic != kMagic || fds.size() != kEndpointFds)
    return remoteError("malformed shared-memory handshake reply from " + peerName());
  e.pid = pid_;
  e.readsCma = readsCma_;
  e.socket = std::move(socket_);
  e.ringFd = std::move(fds[0]);
  e.bellEventFd = std::move(fds[1]);
  e.bellMemFd = std::move(fds[2]);
  *done = std::move(e);
  state_ = State::kDone;
  return Status::ok();
}

void Connector::addPollFds(std::vector<pollfd>* fds) const {
  if (state_ == State::kConnect && retryTimer_.valid())
    fds->push_back(pollfd{retryTimer_.get(), POLLIN, 0});
  if (state_ == State::kAwaitChallenge || state_ == State::kAwaitWelcome)
    fds->push_back(pollfd{socket_.get(), POLLIN, 0});
}

}  // namespace loom::transport::shm
