#include "transports/loopback/loopback_connection.h"

#include <poll.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "base/log.h"

namespace loom::transport::loopback {

namespace {

// Messages up to this size are copied while the pair's lock is held (one lock round trip
// instead of two); larger ones are copied outside it so the sender is never held up.
constexpr size_t kInlineCopyBytes = 4096;
// close() re-checks the abort flag at least this often while it sleeps.
constexpr int kCloseSliceMs = 100;

std::string describe(size_t bytes, uint64_t tag) {
  return std::to_string(bytes) + " bytes with tag " + std::to_string(tag);
}

}  // namespace

LoopbackConnection::LoopbackConnection(std::shared_ptr<Pair> pair, int rank, int peer, int lane,
                                       std::shared_ptr<Doorbell> doorbell,
                                       const std::atomic<bool>* abortFlag)
    : pair_(std::move(pair)),
      rank_(rank),
      peer_(peer),
      lane_(lane),
      side_(rank < peer ? 0 : 1),
      doorbell_(std::move(doorbell)),
      abortFlag_(abortFlag) {}

LoopbackConnection::~LoopbackConnection() {
  if (!closed_) close(Deadline::atNs(0)).ignoreError();
}

uint64_t LoopbackConnection::sendsCompleted() const {
  return pair_->directions[side_].copied.load(std::memory_order_acquire);
}

Status LoopbackConnection::usable() const {
  if (closed_)
    return invalidUsage("loopback connection to rank " + std::to_string(peer_) + " lane " +
                        std::to_string(lane_) + " is closed");
  return error_;
}

Status LoopbackConnection::postSend(const void* data, size_t bytes, uint64_t tag) {
  LOOM_RETURN_IF_ERROR(usable());
  {
    std::lock_guard<std::mutex> lock(pair_->mutex);
    Direction& out = pair_->directions[side_];
    out.queue.push_back(Message{data, bytes, tag});
    out.pushed.fetch_add(1, std::memory_order_release);
    if (!peerBell_.valid() && pair_->sides[1 - side_].attached)
      peerBell_ = pair_->sides[1 - side_].bell;
  }
  ++sendsPosted_;
  if (peerBell_.valid()) peerBell_.ring();
  return Status::ok();
}

Status LoopbackConnection::postRecv(void* data, size_t bytes, uint64_t tag) {
  LOOM_RETURN_IF_ERROR(usable());
  receives_.push_back(Receive{data, bytes, tag});
  ++recvsPosted_;
  return Status::ok();
}

Status LoopbackConnection::progress() {
  if (closed_ || !error_.isOk()) return error_;
  if (pair_->failed.load(std::memory_order_acquire)) {
    std::lock_guard<std::mutex> lock(pair_->mutex);
    error_ = pair_->failure;  // classified (and logged) by the side that saw the mismatch
    return error_;
  }
  LOOM_ASSIGN_OR_RETURN(size_t done, receiveMatched());
  if (done > 0) ringPeer();
  return checkPeerClosed();
}

Result<size_t> LoopbackConnection::receiveMatched() {
  Direction& in = pair_->directions[1 - side_];
  size_t done = 0;
  while (!receives_.empty()) {
    if (in.pushed.load(std::memory_order_acquire) == in.copied.load(std::memory_order_relaxed))
      break;  // nothing queued: skip the lock
    const Receive receive = receives_.front();
    Message message;
    bool copiedInline = false;
    {
      std::lock_guard<std::mutex> lock(pair_->mutex);
      if (in.queue.empty()) break;
      message = in.queue.front();
      copiedInline = message.bytes <= kInlineCopyBytes && message.bytes == receive.bytes &&
                     message.tag == receive.tag;
      if (copiedInline) {
        if (message.bytes > 0) std::memcpy(receive.data, message.data, message.bytes);
        in.queue.pop_front();
        in.copied.fetch_add(1, std::memory_order_release);
      } else {
        in.copying = true;
      }
    }
    if (!copiedInline) LOOM_RETURN_IF_ERROR(copyOne(message, receive));
    receives_.pop_front();
    ++recvsCompleted_;
    ++done;
  }
  return done;
}

// The slow path: a large message (copied outside the lock) or a mismatch.
Status LoopbackConnection::copyOne(const Message& message, const Receive& receive) {
  Direction& in = pair_->directions[1 - side_];
  if (message.bytes != receive.bytes || message.tag != receive.tag) {
    {
      std::lock_guard<std::mutex> lock(pair_->mutex);
      in.copying = false;
    }
    return mismatch(message, receive);
  }
  std::memcpy(receive.data, message.data, message.bytes);
  std::lock_guard<std::mutex> lock(pair_->mutex);
  in.queue.pop_front();
  in.copying = false;
  in.copied.fetch_add(1, std::memory_order_release);
  return Status::ok();
}

Status LoopbackConnection::mismatch(const Message& message, const Receive& receive) {
  Status error =
      remoteError("message mismatch on loopback lane " + std::to_string(lane_) + ": rank " +
                  std::to_string(rank_) + " expected " + describe(receive.bytes, receive.tag) +
                  " from rank " + std::to_string(peer_) + ", but rank " + std::to_string(peer_) +
                  " sent " + describe(message.bytes, message.tag));
  {
    std::lock_guard<std::mutex> lock(pair_->mutex);
    if (pair_->failure.isOk()) pair_->failure = error;
    pair_->failed.store(true, std::memory_order_release);
  }
  ringPeer();
  return fail(std::move(error));
}

Status LoopbackConnection::checkPeerClosed() {
  uint64_t sendsPending = sendsPosted_ - sendsCompleted();
  if (receives_.empty() && sendsPending == 0) return Status::ok();
  if (!pair_->sides[1 - side_].closedFlag.load(std::memory_order_acquire)) return Status::ok();
  {
    std::lock_guard<std::mutex> lock(pair_->mutex);
    if (!pair_->sides[1 - side_].closed) return Status::ok();
    // A closing side first withdraws what it queued, so an empty queue is final.
    if (!pair_->directions[1 - side_].queue.empty()) return Status::ok();
  }
  sendsPending = sendsPosted_ - sendsCompleted();
  if (receives_.empty() && sendsPending == 0) return Status::ok();
  return fail(remoteError("rank " + std::to_string(peer_) +
                          " closed the connection (loopback lane " + std::to_string(lane_) +
                          ") while rank " + std::to_string(rank_) + " had " +
                          std::to_string(receives_.size()) + " receives and " +
                          std::to_string(sendsPending) + " sends pending"));
}

Status LoopbackConnection::fail(Status error) {
  // INFO, not WARN: the runtime reports the failure once, with the operation it broke.
  LOOM_LOG(kInfo, kNet) << error.toString();
  error_ = std::move(error);
  return error_;
}

void LoopbackConnection::ringPeer() {
  if (!peerBell_.valid()) {
    std::lock_guard<std::mutex> lock(pair_->mutex);
    if (!pair_->sides[1 - side_].attached) return;
    peerBell_ = pair_->sides[1 - side_].bell;
  }
  peerBell_.ring();
}

Status LoopbackConnection::close(Deadline deadline) {
  if (closed_) return Status::ok();
  receives_.clear();
  Status status = waitForSends(deadline);
  markClosed();
  closed_ = true;
  ringPeer();
  detachPair(pair_);
  return status;
}

// Sleeps on this rank's doorbell: the peer rings it after copying our messages.
Status LoopbackConnection::waitForSends(Deadline deadline) {
  for (;;) {
    uint64_t left = sendsPosted_ - sendsCompleted();
    if (left == 0) return Status::ok();
    if (pair_->failed.load(std::memory_order_acquire)) {
      std::lock_guard<std::mutex> lock(pair_->mutex);
      return pair_->failure;
    }
    {
      std::lock_guard<std::mutex> lock(pair_->mutex);
      if (pair_->sides[1 - side_].closed)
        return remoteError("close: rank " + std::to_string(peer_) +
                           " closed the connection (loopback) before receiving " +
                           std::to_string(left) + " messages");
    }
    if (abortFlag_ && abortFlag_->load(std::memory_order_relaxed))
      return abortedError("close of loopback connection to rank " + std::to_string(peer_) +
                          ": aborted");
    if (deadline.expired())
      return timeoutError("close: " + std::to_string(left) + " sends to rank " +
                          std::to_string(peer_) + " on lane " + std::to_string(lane_) +
                          " were not received before the deadline");
    if (discardIncoming() > 0) ringPeer();
    doorbell_->arm();
    if (sendsPosted_ != sendsCompleted() && !incomingQueued()) {
      pollfd p{doorbell_->eventFd(), POLLIN, 0};
      int ms = deadline.remainingMs();
      ::poll(&p, 1, ms < kCloseSliceMs ? ms : kCloseSliceMs);
    }
    doorbell_->disarm();
  }
}

// Our receives are abandoned once close() starts, so what the peer sends meanwhile is dropped
// (and completes for the peer): two ranks closing at once must not wait for each other.
size_t LoopbackConnection::discardIncoming() {
  std::lock_guard<std::mutex> lock(pair_->mutex);
  Direction& in = pair_->directions[1 - side_];
  size_t n = in.queue.size();
  in.queue.clear();
  in.copied.fetch_add(n, std::memory_order_release);
  return n;
}

bool LoopbackConnection::incomingQueued() {
  std::lock_guard<std::mutex> lock(pair_->mutex);
  return !pair_->directions[1 - side_].queue.empty();
}

// Withdraws whatever the peer has not copied (waiting out a copy already under way, which is
// bounded by one memcpy), so the peer never touches our buffers after close() returns.
void LoopbackConnection::markClosed() {
  std::unique_lock<std::mutex> lock(pair_->mutex);
  Direction& out = pair_->directions[side_];
  while (out.copying) {
    lock.unlock();
    std::this_thread::yield();
    lock.lock();
  }
  out.queue.clear();
  pair_->sides[side_].closed = true;
  pair_->sides[side_].closedFlag.store(true, std::memory_order_release);
}

}  // namespace loom::transport::loopback
