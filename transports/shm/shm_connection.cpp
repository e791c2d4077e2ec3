#include "transports/shm/shm_connection.h"

#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "base/log.h"
#include "base/random.h"
#include "transports/shm/packet_socket.h"

namespace loom::transport::shm {

namespace {

// How often a connection that waits for its peer checks the control socket for the peer's
// exit while the driver spins (a driver about to sleep checks at once).
constexpr int64_t kLivenessPeriodNs = 1000000;  // 1 ms
constexpr uint32_t kIdleCallsPerClockRead = 64;

}  // namespace

Result<std::unique_ptr<ShmConnection>> ShmConnection::create(Setup setup) {
  std::unique_ptr<ShmConnection> c(new ShmConnection(std::move(setup)));
  LOOM_RETURN_IF_ERROR(c->init());
  return c;
}

Status ShmConnection::init() {
  const ShmOptions& o = setup_.options;
  LOOM_ASSIGN_OR_RETURN(rxRing_, Ring::create(o.geometry));
  consumer_ = RingConsumer(&rxRing_);
  ownBellRef_ = DoorbellRef::local(setup_.ownBell);
  LOOM_RETURN_IF_ERROR(secureRandom(&probeCookie_, sizeof(probeCookie_)));
  if (o.directCopy) {
    rxDirect_ = std::make_shared<DirectTable>(o.geometry.slotCount);
    LOOM_ASSIGN_OR_RETURN(directToken_, registerDirectTable(rxDirect_));
  }
  handshakeDeadlineNs_ = nowNs() + setup_.identity.timeoutMs * 1000000;
  if (setup_.role == Role::kConnector)
    connector_ =
        std::make_unique<Connector>(setup_.identity, setup_.peer, setup_.lane, setup_.peerAddress);
  return Status::ok();
}

ShmConnection::~ShmConnection() {
  teardown();
}

std::string ShmConnection::peerName() const {
  std::string s = "rank " + std::to_string(setup_.peer) + " (";
  if (peerPid_ != 0) s += "pid " + std::to_string(peerPid_) + ", ";
  return s + "lane " + std::to_string(setup_.lane) + ")";
}

LocalEndpoint ShmConnection::localEndpoint() const {
  LocalEndpoint e;
  e.geometry = setup_.options.geometry;
  e.ringFd = rxRing_.fd();
  e.bellEventFd = setup_.ownBell->eventFd();
  e.bellMemFd = setup_.ownBell->memFd();
  e.probeAddress = reinterpret_cast<uintptr_t>(&probeCookie_);
  e.probeCookie = probeCookie_;
  e.directToken = directToken_;
  e.offerCma = setup_.options.cma;
  e.control = rxRing_.control();
  return e;
}

Status ShmConnection::postSend(const void* data, size_t bytes, uint64_t tag) {
  if (!error_.isOk()) return error_;
  if (closing_) return invalidUsage("postSend on a closed shm connection to " + peerName());
  if (data == nullptr && bytes != 0) return invalidArgument("postSend: null buffer");
  sends_.push_back(SendOp{static_cast<const uint8_t*>(data), bytes, tag});
  ++sendsPosted_;
  return Status::ok();
}

Status ShmConnection::postRecv(void* data, size_t bytes, uint64_t tag) {
  if (!error_.isOk()) return error_;
  if (closing_) return invalidUsage("postRecv on a closed shm connection to " + peerName());
  if (data == nullptr && bytes != 0) return invalidArgument("postRecv: null buffer");
  recvs_.push_back(RecvOp{static_cast<uint8_t*>(data), bytes, tag});
  ++recvsPosted_;
  return Status::ok();
}

Status ShmConnection::progress() {
  if (!error_.isOk() || closed_) return error_;
  Status s = progressOnce();
  return s.isOk() ? s : fail(std::move(s));
}

Status ShmConnection::progressOnce() {
  if (!ready_) {
    LOOM_RETURN_IF_ERROR(progressHandshake());
    if (!ready_) return Status::ok();
  }
  bool moved = false, rang = false, selfWake = false;
  LOOM_RETURN_IF_ERROR(pumpSends(&moved, &rang));
  LOOM_RETURN_IF_ERROR(pumpRecvs(&moved, &rang, &selfWake));
  if (rang) peerBell_.ring();
  if (selfWake) ownBellRef_.ring();
  if (moved || !pending()) {
    idleCalls_ = 0;
    return Status::ok();
  }
  return watchPeer();
}

Status ShmConnection::progressHandshake() {
  std::optional<Established> done;
  // Either role drives the Transport's hub too, so that accepting and farewells progress even
  // if the runtime polls only its connections.
  LOOM_RETURN_IF_ERROR(setup_.acceptor->progress());
  if (setup_.role == Role::kConnector) {
    LOOM_RETURN_IF_ERROR(connector_->progress(localEndpoint(), &done));
  } else {
    done = setup_.acceptor->take(setup_.peer, setup_.lane);
    if (done && done->farewell)
      return remoteError(peerName() + " closed its end of the shared-memory connection before " +
                         "it was established");
  }
  if (done) return establish(std::move(*done));
  if (nowNs() > handshakeDeadlineNs_)
    return timeoutError("shared-memory connection with " + peerName() + " not established within " +
                        std::to_string(setup_.identity.timeoutMs) + " ms");
  return Status::ok();
}

Status ShmConnection::establish(Established e) {
  RingGeometry geometry{e.endpoint.slotBytes, e.endpoint.slotCount};
  peerPid_ = e.pid;
  LOOM_ASSIGN_OR_RETURN(txRing_, Ring::attach(std::move(e.ringFd), geometry));
  if (!isEventFd(e.bellEventFd.get()))
    return remoteError(peerName() + " sent a doorbell descriptor that is not an eventfd");
  LOOM_ASSIGN_OR_RETURN(peerBell_,
                        DoorbellRef::attach(std::move(e.bellEventFd), std::move(e.bellMemFd)));
  socket_ = std::move(e.socket);
  producer_ = RingProducer(&txRing_);
  sameProcess_ = peerPid_ == ::getpid();
  if (setup_.options.directCopy && sameProcess_)
    txDirect_ = findDirectTable(e.endpoint.directToken);
  LocalEndpoint local = localEndpoint();
  if (setup_.role == Role::kConnector) {
    readsCma_ = e.readsCma;  // probed (and recorded) before our ring was sent
  } else {
    readsCma_ = probeAndRecord(peerPid_, e.endpoint.probeAddress, e.endpoint.probeCookie, local);
    LOOM_RETURN_IF_ERROR(sendWelcome(socket_.get(), local, peerName()));
  }
  connector_.reset();
  setup_.acceptor.reset();
  rxRing_.closeFd();
  ready_ = true;
  LOOM_LOG(kInfo, kShm) << "rank " << setup_.identity.rank << " connected to " << peerName()
                        << " over shared memory; ring " << geometry.slotCount << " x "
                        << geometry.slotBytes << " bytes; single copy from the peer: "
                        << (sameProcess_ ? (rxDirect_ ? "direct" : "off")
                                         : (readsCma_ ? "CMA" : "off"));
  return Status::ok();
}

bool ShmConnection::sendsWithCmaForTesting() const {
  return ready_ && txRing_.mapped() && !sameProcess_ && setup_.options.cma &&
         txRing_.control()->consumerReadsCma.load(std::memory_order_acquire) == 1;
}

// Idle with work pending: is the peer still there?
Status ShmConnection::watchPeer() {
  if (!socket_.valid()) return Status::ok();  // self connection
  bool due = setup_.ownBell->state()->sleeping.load(std::memory_order_relaxed) != 0;
  if (!due && ++idleCalls_ % kIdleCallsPerClockRead == 0)
    due = nowNs() - lastLivenessNs_ >= kLivenessPeriodNs;
  if (!due) return Status::ok();
  lastLivenessNs_ = nowNs();
  LOOM_RETURN_IF_ERROR(checkSocket());
  if (!peerClosed_) return checkPeerClosing();
  // The peer is gone: take whatever it left in the ring, then fail what cannot finish.
  bool moved = false, rang = false, selfWake = false;
  LOOM_RETURN_IF_ERROR(pumpSends(&moved, &rang));
  LOOM_RETURN_IF_ERROR(pumpRecvs(&moved, &rang, &selfWake));
  if (!pending()) return Status::ok();
  return remoteError(peerName() + " closed the shared-memory connection or died, with " +
                     std::to_string(sendsPosted_ - sendsCompleted_) + " sends and " +
                     std::to_string(recvsPosted_ - recvsCompleted_) + " receives pending here");
}

// A peer that is closing consumes only the messages of the receives it had posted: a send of
// ours beyond them would wait forever (both ranks may be closing with sends in flight).
Status ShmConnection::checkPeerClosing() const {
  uint64_t closing = txRing_.control()->consumerClosing.load(std::memory_order_acquire);
  if (closing == 0 || sendsCompleted_ == sendsPosted_ || sendsCompleted_ < closing - 1)
    return Status::ok();
  return remoteError(peerName() + " closed the shared-memory connection with send #" +
                     std::to_string(sendsCompleted_) + " from here pending (it had posted " +
                     std::to_string(closing - 1) + " receives)");
}

Status ShmConnection::checkSocket() {
  if (peerClosed_) return Status::ok();
  char byte;
  ssize_t n = ::recv(socket_.get(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE))) {
    peerClosed_ = true;
  } else if (n > 0) {
    return remoteError(peerName() + " sent an unexpected message on the shm control socket");
  } else if (errno != EAGAIN && errno != EINTR) {
    return systemErrorFromErrno("recv on the shm control socket of " + peerName(), errno);
  }
  return Status::ok();
}

Status ShmConnection::fail(Status status) {
  if (error_.isOk()) {
    error_ = std::move(status);
    // INFO, not WARN: the runtime reports the failure once, with the operation it broke.
    LOOM_LOG(kInfo, kShm) << "rank " << setup_.identity.rank << ": " << error_.toString();
    // Tell the peer at once rather than letting it wait for a timeout.
    if (socket_.valid()) ::shutdown(socket_.get(), SHUT_RDWR);
  }
  return error_;
}

void ShmConnection::addPollFds(std::vector<pollfd>* fds) const {
  if (!error_.isOk() || closed_) return;
  if (ready_) {
    if (socket_.valid()) fds->push_back(pollfd{socket_.get(), POLLIN, 0});
  } else if (connector_) {
    connector_->addPollFds(fds);
  } else if (setup_.acceptor) {
    setup_.acceptor->addPollFds(fds);
  }
}

Status ShmConnection::close(Deadline deadline) {
  if (closed_) return closeStatus_;
  // Pending receives are abandoned (transport.h): the operation that posted them has ended
  // (it failed), so their buffers may be gone and nothing may be delivered into them now. The
  // fault tests found this: a destroy after a failed collective copied into freed memory.
  recvs_.clear();
  if (!closing_ && ready_ && error_.isOk()) {
    // Tell the peer which of its messages we took, and wake it to notice.
    rxRing_.control()->consumerClosing.store(recvsCompleted_ + 1, std::memory_order_release);
    peerBell_.ring();
  }
  closing_ = true;
  Status s;
  for (int spins = 0; error_.isOk() && sendsCompleted_ < sendsPosted_; ++spins) {
    s = progress();
    if (!s.isOk() || sendsCompleted_ == sendsPosted_) break;
    if (setup_.abortFlag && setup_.abortFlag->load(std::memory_order_relaxed)) {
      s = abortedError("close of the shm connection to " + peerName() + " aborted");
      break;
    }
    if (deadline.expired()) {
      s = timeoutError("close: " + std::to_string(sendsPosted_ - sendsCompleted_) + " sends to " +
                       peerName() + " did not complete before the deadline");
      break;
    }
    if (spins < 1000) {
      sched_yield();
    } else {
      ::usleep(100);
    }
  }
  if (!error_.isOk()) s = error_;
  closed_ = true;
  closeStatus_ = s;
  teardown();
  return s;
}

void ShmConnection::teardown() {
  // Closed before the handshake finished: make sure the peer hears of it (handshake.h).
  if (!ready_ && setup_.acceptor && setup_.role == Role::kAccepter)
    setup_.acceptor->abandon(setup_.peer, setup_.lane);
  if (!ready_ && setup_.acceptor && setup_.role == Role::kConnector)
    setup_.acceptor->addFarewell(std::make_unique<Connector>(
        setup_.identity, setup_.peer, setup_.lane, setup_.peerAddress, /*farewell=*/true));
  // Our sends posted for a direct copy are withdrawn: the peer thread must not read buffers
  // whose operation has ended (a failed one returns while they are still posted).
  if (txDirect_) txDirect_->withdraw();
  if (directToken_ != 0) unregisterDirectTable(directToken_);
  directToken_ = 0;
  sends_.clear();
  recvs_.clear();
  sendCursor_ = 0;
  txDirect_.reset();
  socket_.reset();
  connector_.reset();
  setup_.acceptor.reset();
  peerBell_ = DoorbellRef();
  ownBellRef_ = DoorbellRef();
  producer_ = RingProducer();
  consumer_ = RingConsumer();
  txRing_ = Ring();
  rxRing_ = Ring();
}

}  // namespace loom::transport::shm
