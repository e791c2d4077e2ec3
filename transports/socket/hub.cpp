#include "transports/socket/hub.h"

#include <sys/socket.h>

#include <cerrno>

#include "base/log.h"
#include "transports/socket/socket_connection.h"

namespace loom::transport::socket {

namespace {

// Sockets allowed mid-handshake at once; more are closed at once (a flood is not our peers).
constexpr size_t kMaxHandshakes = 1024;

// Best effort: a fresh socket always has room for one header.
void sayGoodbye(int fd) {
  uint8_t bye[kHeaderBytes];
  encodeHeader(Header{kGoodbyeMagic, 0, 0}, bye);
  [[maybe_unused]] ssize_t n = ::send(fd, bye, sizeof(bye), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::shutdown(fd, SHUT_WR);
}

const Config& configOf(const TransportContext& context) {
  static const Config kDefaults;
  return context.config ? *context.config : kDefaults;
}

}  // namespace

Result<std::shared_ptr<Hub>> Hub::create(const TransportContext& context) {
  const Config& config = configOf(context);
  std::shared_ptr<Hub> hub(new Hub());
  hub->identity_ = Identity{context.rank, context.nranks, context.commHash, context.secret};
  hub->abortFlag_ = context.abortFlag;
  hub->handshakeTimeoutMs_ = config.timeoutMs;
  LOOM_ASSIGN_OR_RETURN(hub->address_, findInterfaceAddress(config.socketIfname));
  hub->address_.setPort(0);
  LOOM_ASSIGN_OR_RETURN(hub->listener_, listenTcp(&hub->address_));
  LOOM_RETURN_IF_ERROR(setNonBlocking(hub->listener_.get(), true));
  return hub;
}

Status Hub::progress() {
  if (!active()) return Status::ok();
  progressFarewells();
  acceptAll();
  for (size_t i = 0; i < handshakes_.size();) {
    if (step(handshakes_[i].get())) {
      ++i;
    } else {
      handshakes_[i] = std::move(handshakes_.back());
      handshakes_.pop_back();
    }
  }
  return Status::ok();
}

void Hub::addPollFds(std::vector<pollfd>* fds) const {
  if (!active()) return;
  fds->push_back(pollfd{listener_.get(), POLLIN, 0});
  for (const auto& h : handshakes_)
    fds->push_back(pollfd{h->fd(), h->pollEvents(), 0});
  for (const Farewell& f : farewells_)
    fds->push_back(pollfd{f.handshake->fd(), f.handshake->pollEvents(), 0});
}

void Hub::adoptFarewell(std::unique_ptr<ConnectHandshake> handshake) {
  farewells_.push_back(Farewell{std::move(handshake), Deadline::afterMs(handshakeTimeoutMs_)});
}

// Failures are not news here: the peer may have gone as well.
void Hub::progressFarewells() {
  for (size_t i = 0; i < farewells_.size();) {
    Farewell& f = farewells_[i];
    Result<bool> done = f.handshake->advance(identity_);
    bool finished = !done.isOk() || *done || f.deadline.expired();
    if (done.isOk() && *done) sayGoodbye(f.handshake->fd());
    if (!finished) {
      ++i;
      continue;
    }
    farewells_[i] = std::move(farewells_.back());
    farewells_.pop_back();
  }
}

void Hub::acceptAll() {
  for (;;) {
    sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    UniqueFd fd(::accept4(listener_.get(), reinterpret_cast<sockaddr*>(&ss), &len,
                          SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        LOOM_LOG(kWarn, kNet) << "socket transport (rank " << identity_.rank << "): accept on "
                              << address_.toString() << ": "
                              << systemErrorFromErrno("accept4", errno).message();
      }
      return;
    }
    Result<SocketAddress> remote = SocketAddress::fromRaw(reinterpret_cast<sockaddr*>(&ss), len);
    SocketAddress from = remote.isOk() ? *remote : SocketAddress();
    if (handshakes_.size() >= kMaxHandshakes) {
      reject(from, remoteError("too many connections are mid-handshake"));
      continue;
    }
    Status configured = configureSocket(fd.get());
    if (!configured.isOk()) {
      reject(from, configured);
      continue;
    }
    Result<std::unique_ptr<AcceptHandshake>> h =
        AcceptHandshake::create(std::move(fd), from, Deadline::afterMs(handshakeTimeoutMs_));
    if (!h.isOk()) {
      reject(from, h.status());
      continue;
    }
    handshakes_.push_back(std::move(h).value());
  }
}

bool Hub::step(AcceptHandshake* h) {
  Result<bool> done = h->advance(identity_);
  if (!done.isOk()) {
    reject(h->remote(), done.status());
    return false;
  }
  if (*done) {
    route(h);
    return false;
  }
  if (h->expired()) {
    reject(h->remote(), timeoutError("did not complete the handshake within " +
                                     std::to_string(handshakeTimeoutMs_) + " ms"));
    return false;
  }
  return true;
}

void Hub::route(AcceptHandshake* h) {
  Key key{h->peerRank(), h->lane()};
  auto waiter = waiters_.find(key);
  if (waiter != waiters_.end()) {
    SocketConnection* conn = waiter->second;
    waiters_.erase(waiter);
    conn->adopt(h->takeFd(), h->remote());
    return;
  }
  if (closed_.erase(key)) {
    sayGoodbye(h->fd());  // the socket is closed with the handshake
    return;
  }
  auto [it, fresh] = parked_.try_emplace(key);
  if (!fresh) {
    LOOM_LOG(kWarn, kNet) << "socket transport (rank " << identity_.rank << "): rank " << key.first
                          << " lane " << key.second << " connected again from "
                          << h->remote().toString() << "; dropping its earlier connection from "
                          << it->second.remote.toString();
  }
  it->second = Parked{h->takeFd(), h->remote()};
}

Status Hub::waitFor(int rank, int lane, SocketConnection* conn) {
  Key key{rank, lane};
  closed_.erase(key);  // a new connection after a close
  if (waiters_.count(key))
    return invalidUsage("socket transport: a connection to rank " + std::to_string(rank) +
                        " lane " + std::to_string(lane) + " is already waiting for its peer");
  auto parked = parked_.find(key);
  if (parked != parked_.end()) {
    Parked p = std::move(parked->second);
    parked_.erase(parked);
    conn->adopt(std::move(p.fd), p.remote);
    return Status::ok();
  }
  waiters_[key] = conn;
  return Status::ok();
}

void Hub::cancelWait(int rank, int lane, SocketConnection* conn) {
  auto it = waiters_.find(Key{rank, lane});
  if (it != waiters_.end() && it->second == conn) waiters_.erase(it);
}

void Hub::closeWait(int rank, int lane, SocketConnection* conn) {
  auto it = waiters_.find(Key{rank, lane});
  if (it == waiters_.end() || it->second != conn) return;
  waiters_.erase(it);
  closed_.insert(Key{rank, lane});
}

void Hub::reject(const SocketAddress& remote, const Status& why) {
  LOOM_LOG(kWarn, kNet) << "socket transport (rank " << identity_.rank
                        << "): rejected connection from " << remote.toString() << ": "
                        << why.message();
}

}  // namespace loom::transport::socket
