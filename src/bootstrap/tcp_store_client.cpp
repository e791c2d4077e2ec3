// TcpStoreClient: requests carry ids, so several threads may wait at once. Whichever waiting
// thread finds no reader active becomes the reader for one poll slice, moves every complete
// reply it sees to its owner's Pending slot, then hands the role back (leader/follower). A
// partially received reply stays in rx_ for the next reader, so a caller whose deadline passes
// mid-frame never desynchronises the stream.
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "base/random.h"
#include "bootstrap/tcp_store.h"
#include "bootstrap/tcp_store_wire.h"

namespace loom::bootstrap {

namespace {

constexpr int kSliceMs = 100;
constexpr size_t kReadChunkBytes = 64 * 1024;

// The client's half of the handshake (tcp_store_wire.h); each failure names what to check.
Status handshake(int fd, const UniqueId& id, int rank, int nranks, Deadline deadline,
                 const std::atomic<bool>* cancel) {
  const std::string root = "rendezvous root at " + id.root.toString();
  uint8_t hello[wire::kServerHelloBytes];
  Status s = recvAll(fd, hello, sizeof(hello), deadline, root, cancel);
  if (s.code() == Code::kRemoteError)
    return remoteError(root +
                       " closed the connection before the handshake (it is serving too "
                       "many connections, or shutting down)");
  if (s.code() == Code::kTimeout)
    return timeoutError(root +
                        " accepted the connection but sent no greeting (is it a loom "
                        "rendezvous root? is the unique id from this job?)");
  LOOM_RETURN_IF_ERROR(s);
  if (std::memcmp(hello, wire::kServerMagic, 8) != 0)
    return invalidUsage(id.root.toString() +
                        " is not a loom rendezvous root (unexpected greeting); is the unique id "
                        "or LOOM_COMM_ID from this job?");
  wire::Nonce challenge, clientChallenge;
  std::memcpy(challenge.data(), hello + 8, 16);
  LOOM_RETURN_IF_ERROR(secureRandom(clientChallenge.data(), clientChallenge.size()));
  auto mine = wire::encodeClientHello(id.secret, challenge, clientChallenge, rank, nranks);
  LOOM_RETURN_IF_ERROR(sendAll(fd, mine.data(), mine.size(), deadline, root, cancel));

  uint8_t welcome[wire::kWelcomeBytes];
  s = recvAll(fd, welcome, sizeof(welcome), deadline, root, cancel);
  if (s.code() == Code::kRemoteError)
    return invalidUsage(root + " rejected this unique id (stale or from another job)");
  LOOM_RETURN_IF_ERROR(s);
  uint32_t code = wire::getU32(welcome + 32);
  int32_t rootNranks = static_cast<int32_t>(wire::getU32(welcome + 36));
  Digest proof;
  std::memcpy(proof.data(), welcome, proof.size());
  if (!digestEqual(proof,
                   wire::serverProof(id.secret, clientChallenge, challenge, code, rootNranks)))
    return invalidUsage(root +
                        " could not prove it knows this job's secret (a root of another "
                        "job on that address?)");
  if (code == static_cast<uint32_t>(wire::WelcomeCode::kNranksMismatch))
    return invalidUsage(root + " serves a job of " + std::to_string(rootNranks) +
                        " ranks, but rank " + std::to_string(rank) + " was told nranks=" +
                        std::to_string(nranks) + " (every rank must pass the same nranks)");
  if (code != static_cast<uint32_t>(wire::WelcomeCode::kOk))
    return invalidArgument(root + " refused rank " + std::to_string(rank) + " of " +
                           std::to_string(nranks) + " (code " + std::to_string(code) + ")");
  return Status::ok();
}

}  // namespace

Result<std::shared_ptr<TcpStoreClient>> TcpStoreClient::connect(const UniqueId& id, int rank,
                                                                int nranks, Deadline deadline,
                                                                const std::atomic<bool>* cancel,
                                                                int64_t requestTimeoutMs) {
  if (nranks <= 0 || rank < 0 || rank >= nranks)
    return invalidArgument("rank " + std::to_string(rank) +
                           " is not in [0, nranks=" + std::to_string(nranks) + ")");
  Result<UniqueFd> fd = connectTcp(id.root, deadline, cancel);
  if (!fd.isOk()) {
    if (fd.status().code() == Code::kTimeout)
      return timeoutError("no rendezvous root at " + id.root.toString() +
                          " (is rank 0 running? is the unique id from this job?)");
    if (fd.status().code() == Code::kAborted) return fd.takeStatus();
    return fd.status().withContext("connect to the rendezvous root at " + id.root.toString());
  }
  LOOM_RETURN_IF_ERROR(setNoDelay(fd->get()));
  LOOM_RETURN_IF_ERROR(handshake(fd->get(), id, rank, nranks, deadline, cancel));
  LOOM_RETURN_IF_ERROR(setNonBlocking(fd->get(), true));
  return std::shared_ptr<TcpStoreClient>(
      new TcpStoreClient(std::move(fd).value(), id.root, requestTimeoutMs));
}

TcpStoreClient::TcpStoreClient(UniqueFd fd, SocketAddress root, int64_t requestTimeoutMs)
    : fd_(std::move(fd)),
      root_(root),
      rootName_("rendezvous root at " + root.toString()),
      requestTimeoutMs_(requestTimeoutMs) {}

TcpStoreClient::~TcpStoreClient() = default;

Status TcpStoreClient::checkKey(const std::string& key) const {
  if (key.size() > wire::kMaxKeyBytes)
    return invalidArgument("store key of " + std::to_string(key.size()) +
                           " bytes exceeds the limit of " + std::to_string(wire::kMaxKeyBytes));
  return Status::ok();
}

Status TcpStoreClient::sendFrame(const std::vector<uint8_t>& frame, Deadline deadline) {
  Status s;
  {
    std::lock_guard<std::mutex> lock(sendMu_);
    s = sendAll(fd_.get(), frame.data(), frame.size(), deadline, rootName_);
  }
  if (!s.isOk()) {
    // A frame may be half written: the stream is unusable from here on.
    std::lock_guard<std::mutex> lock(mu_);
    if (broken_.isOk()) broken_ = s;
    cv_.notify_all();
  }
  return s;
}

Status TcpStoreClient::readSome(int timeoutMs, std::vector<Frame>* frames) {
  pollfd p{fd_.get(), POLLIN, 0};
  int rc = ::poll(&p, 1, timeoutMs);
  if (rc < 0 && errno != EINTR) return systemErrorFromErrno("poll " + rootName_, errno);
  if (rc <= 0) return Status::ok();
  for (;;) {
    size_t at = rx_.size();
    rx_.resize(at + kReadChunkBytes);
    ssize_t n = ::recv(fd_.get(), rx_.data() + at, kReadChunkBytes, MSG_DONTWAIT);
    rx_.resize(at + (n > 0 ? static_cast<size_t>(n) : 0));
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n == 0 || errno == ECONNRESET)
      return remoteError(rootName_ +
                         " closed the connection (has the process hosting it, rank 0 or "
                         "loomrun, exited?)");
    return systemErrorFromErrno("recv from " + rootName_, errno);
  }
  while (rx_.size() - rxOffset_ >= 4) {
    uint32_t len = wire::getU32(rx_.data() + rxOffset_);
    if (len < wire::kReplyHeaderBytes || len > wire::kMaxReplyBody)
      return remoteError(rootName_ + " sent a malformed reply of " + std::to_string(len) +
                         " bytes");
    if (rx_.size() - rxOffset_ < 4 + size_t{len}) break;
    const uint8_t* body = rx_.data() + rxOffset_ + 4;
    Frame f;
    f.reply.status = body[0];
    f.id = wire::getU64(body + 1);
    f.reply.payload.assign(body + wire::kReplyHeaderBytes, body + len);
    frames->push_back(std::move(f));
    rxOffset_ += 4 + size_t{len};
  }
  rx_.erase(rx_.begin(), rx_.begin() + static_cast<ptrdiff_t>(rxOffset_));
  rxOffset_ = 0;
  return Status::ok();
}

Result<TcpStoreClient::Reply> TcpStoreClient::request(uint8_t op, const std::string& key,
                                                      const uint8_t* value, size_t bytes,
                                                      Deadline deadline,
                                                      const std::atomic<bool>* cancel) {
  Pending pending;
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!broken_.isOk()) return broken_;
    id = nextId_++;
    pending_[id] = &pending;
  }
  std::vector<uint8_t> frame;
  wire::appendRequest(&frame, static_cast<wire::Op>(op), id, key, value, bytes);
  Status sent = sendFrame(frame, deadline);
  std::unique_lock<std::mutex> lock(mu_);
  if (!sent.isOk()) {
    pending_.erase(id);
    return sent;
  }
  for (;;) {
    if (pending.done) {
      if (pending.reply.status == static_cast<uint8_t>(wire::ReplyStatus::kError))
        return remoteError(rootName_ + " refused the request for '" + key + "': " +
                           std::string(pending.reply.payload.begin(), pending.reply.payload.end()));
      return std::move(pending.reply);
    }
    Status why;
    if (!broken_.isOk())
      why = broken_;
    else if (cancel && cancel->load())
      why = abortedError("store request for '" + key + "' to " + rootName_ + ": aborted");
    else if (deadline.expired())
      why = timeoutError("store request for '" + key + "' to " + rootName_ + ": no reply");
    if (!why.isOk()) {
      pending_.erase(id);
      bool parked = op == static_cast<uint8_t>(wire::Op::kGet) && broken_.isOk();
      lock.unlock();
      if (parked) {  // tell the root to forget the parked GET; a late reply is discarded
        std::vector<uint8_t> cancelFrame;
        wire::appendRequest(&cancelFrame, wire::Op::kCancel, id, "", nullptr, 0);
        sendFrame(cancelFrame, Deadline::afterMs(requestTimeoutMs_)).ignoreError();
      }
      return why;
    }
    int sliceMs = std::min(deadline.remainingMs(), kSliceMs);
    if (readerActive_) {
      cv_.wait_for(lock, std::chrono::milliseconds(sliceMs));
      continue;
    }
    readerActive_ = true;
    lock.unlock();
    std::vector<Frame> frames;
    Status rs = readSome(sliceMs, &frames);
    lock.lock();
    readerActive_ = false;
    for (Frame& f : frames) {
      auto it = pending_.find(f.id);
      if (it == pending_.end()) continue;  // the reply to a request that gave up
      it->second->reply = std::move(f.reply);
      it->second->done = true;
      pending_.erase(it);
    }
    if (!rs.isOk() && broken_.isOk()) {
      broken_ = rs;
      LOOM_LOG(kInfo, kBootstrap) << rs.message();
    }
    cv_.notify_all();
  }
}

Status TcpStoreClient::set(const std::string& key, const Bytes& value) {
  LOOM_RETURN_IF_ERROR(checkKey(key));
  if (value.size() > wire::kMaxValueBytes)
    return invalidArgument("store value for '" + key + "' of " + std::to_string(value.size()) +
                           " bytes exceeds the limit of " + std::to_string(wire::kMaxValueBytes));
  LOOM_ASSIGN_OR_RETURN(
      Reply r, request(static_cast<uint8_t>(wire::Op::kSet), key, value.data(), value.size(),
                       Deadline::afterMs(requestTimeoutMs_), nullptr));
  (void)r;
  return Status::ok();
}

Result<Bytes> TcpStoreClient::get(const std::string& key, Deadline deadline,
                                  const std::atomic<bool>* cancel) {
  LOOM_RETURN_IF_ERROR(checkKey(key));
  Result<Reply> r =
      request(static_cast<uint8_t>(wire::Op::kGet), key, nullptr, 0, deadline, cancel);
  if (!r.isOk()) {
    if (r.status().code() == Code::kTimeout)
      return timeoutError("store get '" + key + "' (" + rootName_ +
                          "): key did not appear before the deadline");
    return r.takeStatus();
  }
  return std::move(r->payload);
}

Result<std::optional<Bytes>> TcpStoreClient::tryGet(const std::string& key) {
  LOOM_RETURN_IF_ERROR(checkKey(key));
  LOOM_ASSIGN_OR_RETURN(Reply r, request(static_cast<uint8_t>(wire::Op::kTryGet), key, nullptr, 0,
                                         Deadline::afterMs(requestTimeoutMs_), nullptr));
  if (r.status == static_cast<uint8_t>(wire::ReplyStatus::kNotFound)) return std::optional<Bytes>();
  return std::optional<Bytes>(std::move(r.payload));
}

Result<int64_t> TcpStoreClient::add(const std::string& key, int64_t delta) {
  LOOM_RETURN_IF_ERROR(checkKey(key));
  uint8_t v[8];
  wire::putU64(v, static_cast<uint64_t>(delta));
  LOOM_ASSIGN_OR_RETURN(Reply r, request(static_cast<uint8_t>(wire::Op::kAdd), key, v, sizeof(v),
                                         Deadline::afterMs(requestTimeoutMs_), nullptr));
  if (r.payload.size() != 8)
    return remoteError(rootName_ + " answered ADD with " + std::to_string(r.payload.size()) +
                       " bytes");
  return static_cast<int64_t>(wire::getU64(r.payload.data()));
}

Status TcpStoreClient::erasePrefix(const std::string& prefix) {
  LOOM_RETURN_IF_ERROR(checkKey(prefix));
  LOOM_ASSIGN_OR_RETURN(Reply r,
                        request(static_cast<uint8_t>(wire::Op::kErasePrefix), prefix, nullptr, 0,
                                Deadline::afterMs(requestTimeoutMs_), nullptr));
  (void)r;
  return Status::ok();
}

}  // namespace loom::bootstrap
