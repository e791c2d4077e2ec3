#include "transports/socket/socket_connection.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include "base/log.h"

namespace loom::transport::socket {

namespace {

// close() re-checks the abort flag at least this often while it waits.
constexpr int kCloseSliceMs = 100;

}  // namespace

Result<std::unique_ptr<SocketConnection>> SocketConnection::create(
    std::shared_ptr<Hub> hub, int peer, int lane, const SocketAddress& peerAddress) {
  std::unique_ptr<SocketConnection> conn(
      new SocketConnection(std::move(hub), peer, lane, peerAddress));
  if (conn->state_ == State::kConnecting) {
    Result<std::unique_ptr<ConnectHandshake>> h = ConnectHandshake::start(peerAddress, peer, lane);
    if (h.isOk()) {
      conn->handshake_ = std::move(h).value();
    } else {
      conn->fail(remoteError("cannot connect to " + conn->peerName() + " lane " +
                             std::to_string(lane) + ": " + h.status().message()))
          .ignoreError();
    }
  } else {
    LOOM_RETURN_IF_ERROR(conn->hub_->waitFor(peer, lane, conn.get()));
  }
  return conn;
}

SocketConnection::SocketConnection(std::shared_ptr<Hub> hub, int peer, int lane,
                                   const SocketAddress& peerAddress)
    : hub_(std::move(hub)),
      rank_(hub_->identity().rank),
      peer_(peer),
      lane_(lane),
      peerAddress_(peerAddress),
      state_(rank_ < peer ? State::kConnecting : State::kWaitingForPeer) {}

SocketConnection::~SocketConnection() {
  if (state_ != State::kClosed) farewell();
}

// Tells the peer, without blocking, that this side is gone: an accepter still waiting leaves a
// marker in the hub, a connector mid-handshake hands the handshake to the hub (both answer the
// peer with a Goodbye later); an open stream gets a Goodbye now if it is at a message boundary
// and the kernel takes it at once.
void SocketConnection::farewell() {
  if (!error_.isOk()) return;
  if (state_ == State::kWaitingForPeer) {
    hub_->closeWait(peer_, lane_, this);
  } else if (state_ == State::kConnecting) {
    if (handshake_) hub_->adoptFarewell(std::move(handshake_));
  } else if (state_ == State::kOpen && sendOffset_ == 0) {
    uint8_t bye[kHeaderBytes];
    encodeHeader(Header{kGoodbyeMagic, 0, 0}, bye);
    [[maybe_unused]] ssize_t n = ::send(fd_.get(), bye, sizeof(bye), MSG_NOSIGNAL | MSG_DONTWAIT);
  }
}

void SocketConnection::adopt(UniqueFd fd, const SocketAddress& remote) {
  fd_ = std::move(fd);
  remote_ = remote;
  state_ = State::kOpen;
}

std::string SocketConnection::peerName() const {
  const SocketAddress& a = state_ == State::kOpen ? remote_ : peerAddress_;
  return "rank " + std::to_string(peer_) + " (" + a.toString() + ")";
}

Status SocketConnection::usable() const {
  if (state_ == State::kClosed)
    return invalidUsage("socket connection to " + peerName() + " lane " + std::to_string(lane_) +
                        " is closed");
  return error_;
}

Status SocketConnection::fail(Status error) {
  if (!error_.isOk()) return error_;
  // INFO, not WARN: the runtime reports the failure once, with the operation it broke.
  LOOM_LOG(kInfo, kNet) << error.toString();
  error_ = std::move(error);
  if (fd_.valid()) ::shutdown(fd_.get(), SHUT_RDWR);  // the peer notices at once
  return error_;
}

Status SocketConnection::postSend(const void* data, size_t bytes, uint64_t tag) {
  LOOM_RETURN_IF_ERROR(usable());
  SendOp& op = sends_.emplace_back();
  op.data = static_cast<const uint8_t*>(data);
  op.bytes = bytes;
  encodeHeader(Header{kMessageMagic, tag, bytes}, op.header);
  ++sendsPosted_;
  return Status::ok();
}

Status SocketConnection::postRecv(void* data, size_t bytes, uint64_t tag) {
  LOOM_RETURN_IF_ERROR(usable());
  recvs_.push_back(RecvOp{static_cast<uint8_t*>(data), bytes, tag});
  ++recvsPosted_;
  return Status::ok();
}

Status SocketConnection::progress() {
  if (state_ == State::kClosed || !error_.isOk()) return error_;
  if (state_ != State::kOpen) {
    LOOM_RETURN_IF_ERROR(advanceSetup());
    if (state_ != State::kOpen) return Status::ok();
  }
  LOOM_RETURN_IF_ERROR(progressSends());
  LOOM_RETURN_IF_ERROR(progressRecvs());
  return checkPeerGone();
}

// Drives the handshake (connector) or the hub (accepter) until the socket is open.
Status SocketConnection::advanceSetup() {
  if (state_ == State::kWaitingForPeer) return hub_->progress();
  Result<bool> done = handshake_->advance(hub_->identity());
  if (!done.isOk()) {
    handshake_.reset();
    return fail(remoteError("handshake with " + peerName() + " lane " + std::to_string(lane_) +
                            " failed: " + done.status().message()));
  }
  if (!*done) return Status::ok();
  SocketAddress remote = peerAddress_;
  adopt(handshake_->takeFd(), remote);
  handshake_.reset();
  return Status::ok();
}

Status SocketConnection::checkPeerGone() {
  if (!peerSaidGoodbye_) return Status::ok();
  size_t sendsPending = sends_.size();
  if (recvs_.empty() && sendsPending == 0) return Status::ok();
  return fail(remoteError(peerName() + " closed the connection (lane " + std::to_string(lane_) +
                          ") while rank " + std::to_string(rank_) + " had " +
                          std::to_string(recvs_.size()) + " receives and " +
                          std::to_string(sendsPending) + " sends pending"));
}

void SocketConnection::addPollFds(std::vector<pollfd>* fds) const {
  if (!error_.isOk()) return;
  switch (state_) {
    case State::kConnecting:
      fds->push_back(pollfd{handshake_->fd(), handshake_->pollEvents(), 0});
      return;
    case State::kWaitingForPeer:
      hub_->addPollFds(fds);
      return;
    case State::kClosed:
      return;
    case State::kOpen:
      break;
  }
  if (endOfStream_ && sends_.empty()) return;
  short events = 0;
  if (!sends_.empty()) events |= POLLOUT;
  // With the staging buffer full and no receive for its head, reading must wait for postRecv
  // (POLLERR/POLLHUP are still reported, so a reset is noticed).
  bool canRead = !staging_ || stageEnd_ - stageBegin_ < kStagingBytes || matched_;
  if (!endOfStream_ && canRead) events |= POLLIN;
  fds->push_back(pollfd{fd_.get(), events, 0});
}

// ---- close ----------------------------------------------------------------------------------

Status SocketConnection::close(Deadline deadline) {
  if (state_ == State::kClosed) return Status::ok();
  recvs_.clear();  // pending receives are abandoned
  matched_ = false;
  haveHeader_ = false;
  discarding_ = true;
  Status status;
  if (sends_.empty() && state_ != State::kOpen) {
    // Nothing is owed, so do not wait for a peer that may never come (it may be closing too).
    if (state_ == State::kConnecting && error_.isOk()) advanceSetup().ignoreError();
    if (state_ != State::kOpen) farewell();
  }
  if (state_ == State::kOpen || !sends_.empty()) {
    status = flushForClose(deadline);
    if (status.isOk() && state_ == State::kOpen) status = sendGoodbye(deadline);
    if (state_ == State::kWaitingForPeer) hub_->cancelWait(peer_, lane_, this);
  }
  if (fd_.valid()) {
    ::shutdown(fd_.get(), SHUT_WR);
    // Drop what already arrived, so closing does not reset the stream under the peer.
    uint8_t sink[4096];
    while (::recv(fd_.get(), sink, sizeof(sink), MSG_DONTWAIT) > 0) {
    }
  }
  fd_.reset();
  handshake_.reset();
  sends_.clear();
  state_ = State::kClosed;
  return status;
}

Status SocketConnection::flushForClose(Deadline deadline) {
  for (;;) {
    if (!error_.isOk()) return error_;
    if (state_ == State::kOpen) {
      LOOM_RETURN_IF_ERROR(progressSends());
      LOOM_RETURN_IF_ERROR(progressRecvs());  // discarding
      LOOM_RETURN_IF_ERROR(checkPeerGone());
    } else {
      LOOM_RETURN_IF_ERROR(advanceSetup());
    }
    if (state_ == State::kOpen && sends_.empty()) return Status::ok();
    LOOM_RETURN_IF_ERROR(waitForIo(deadline));
  }
}

Status SocketConnection::sendGoodbye(Deadline deadline) {
  FixedIo bye;
  encodeHeader(Header{kGoodbyeMagic, 0, 0}, bye.bytes);
  bye.size = kHeaderBytes;
  for (;;) {
    Status s = writeSome(fd_.get(), &bye);
    if (!s.isOk())
      return fail(remoteError("close: connection to " + peerName() + ": " + s.message()));
    if (bye.complete()) return Status::ok();
    LOOM_RETURN_IF_ERROR(waitForIo(deadline, POLLOUT));
  }
}

// Sleeps until the connection's descriptors are ready, a slice passes, or the deadline.
Status SocketConnection::waitForIo(Deadline deadline, short alsoEvents) {
  const std::atomic<bool>* abortFlag = hub_->abortFlag();
  if (abortFlag && abortFlag->load(std::memory_order_relaxed))
    return abortedError("close of socket connection to " + peerName() + ": aborted");
  if (deadline.expired())
    return timeoutError("close: " + std::to_string(sends_.size()) + " sends to " + peerName() +
                        " on lane " + std::to_string(lane_) +
                        " did not complete before the deadline");
  std::vector<pollfd> fds;
  addPollFds(&fds);
  if (alsoEvents != 0 && fd_.valid()) fds.push_back(pollfd{fd_.get(), alsoEvents, 0});
  int ms = deadline.remainingMs();
  ::poll(fds.data(), fds.size(), ms < kCloseSliceMs ? ms : kCloseSliceMs);
  return Status::ok();
}

}  // namespace loom::transport::socket
