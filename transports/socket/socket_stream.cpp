// The socket connection's data path: batched writes of header + payload iovecs, and reads that
// land payloads straight in the posted receive buffer (see socket_connection.h).
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "transports/socket/socket_connection.h"

namespace loom::transport::socket {

namespace {

// iovecs per sendmsg: enough to batch dozens of small messages into one syscall.
constexpr int kMaxIov = 64;
// readv calls per progress(), so one busy stream does not starve the driver's other work.
constexpr int kMaxReadRounds = 16;

std::string describe(uint64_t bytes, uint64_t tag) {
  return std::to_string(bytes) + " bytes with tag " + std::to_string(tag);
}

}  // namespace

// ---- sending --------------------------------------------------------------------------------

Status SocketConnection::progressSends() {
  while (!sends_.empty()) {
    iovec iov[kMaxIov];
    int n = 0;
    size_t want = 0;
    for (size_t i = 0; i < sends_.size() && n + 2 <= kMaxIov; ++i) {
      SendOp& op = sends_[i];
      size_t off = i == 0 ? sendOffset_ : 0;
      if (off < kHeaderBytes) {
        iov[n++] = iovec{op.header + off, kHeaderBytes - off};
        want += kHeaderBytes - off;
        off = kHeaderBytes;
      }
      size_t payloadOff = off - kHeaderBytes;
      if (payloadOff < op.bytes) {
        iov[n++] = iovec{const_cast<uint8_t*>(op.data) + payloadOff, op.bytes - payloadOff};
        want += op.bytes - payloadOff;
      }
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(n);
    ssize_t sent = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Status::ok();
      return streamError("sendmsg", errno);
    }
    completeSent(static_cast<size_t>(sent));
    if (static_cast<size_t>(sent) < want) return Status::ok();  // the socket buffer is full
  }
  return Status::ok();
}

void SocketConnection::completeSent(size_t sent) {
  while (sent > 0) {
    size_t left = kHeaderBytes + sends_.front().bytes - sendOffset_;
    if (sent < left) {
      sendOffset_ += sent;
      return;
    }
    sent -= left;
    sends_.pop_front();
    sendOffset_ = 0;
    ++sendsCompleted_;
  }
}

// ---- receiving ------------------------------------------------------------------------------

Status SocketConnection::progressRecvs() {
  if (!staging_) staging_.reset(new uint8_t[kStagingBytes]);
  for (int round = 0; round < kMaxReadRounds && !endOfStream_; ++round) {
    LOOM_RETURN_IF_ERROR(consumeStaged());
    if (stageBegin_ == stageEnd_) {
      stageBegin_ = stageEnd_ = 0;
    } else if (stageBegin_ > 0) {
      std::memmove(staging_.get(), staging_.get() + stageBegin_, stageEnd_ - stageBegin_);
      stageEnd_ -= stageBegin_;
      stageBegin_ = 0;
    }
    iovec iov[2];
    int n = 0;
    size_t direct = 0;  // bytes offered straight into the receive buffer
    if (matched_ && incomingDone_ < incoming_.bytes) {  // staging is empty here
      direct = incoming_.bytes - incomingDone_;
      iov[n++] = iovec{recvs_.front().data + incomingDone_, direct};
    }
    if (stageEnd_ < kStagingBytes)
      iov[n++] = iovec{staging_.get() + stageEnd_, kStagingBytes - stageEnd_};
    if (n == 0) return Status::ok();  // staging full, waiting for postRecv
    size_t want = direct + (kStagingBytes - stageEnd_);
    ssize_t got = ::readv(fd_.get(), iov, n);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Status::ok();
      if (errno == ECONNRESET && peerSaidGoodbye_) return onEndOfStream();
      return streamError("readv", errno);
    }
    if (got == 0) return onEndOfStream();
    size_t rest = static_cast<size_t>(got);
    size_t intoUser = std::min(rest, direct);
    incomingDone_ += intoUser;
    stageEnd_ += rest - intoUser;
    if (direct > 0 && incomingDone_ == incoming_.bytes) completeRecv();
    if (static_cast<size_t>(got) < want) return consumeStaged();  // drained the socket
  }
  return Status::ok();
}

// Parses headers and copies payload bytes that arrived in the staging buffer.
Status SocketConnection::consumeStaged() {
  for (;;) {
    size_t avail = stageEnd_ - stageBegin_;
    if (discarding_) {
      stageBegin_ = stageEnd_ = 0;
      return Status::ok();
    }
    if (!haveHeader_) {
      if (avail < kHeaderBytes) return Status::ok();
      if (peerSaidGoodbye_)
        return fail(remoteError(peerName() + " sent data after its Goodbye (lane " +
                                std::to_string(lane_) + ")"));
      incoming_ = decodeHeader(staging_.get() + stageBegin_);
      stageBegin_ += kHeaderBytes;
      if (incoming_.magic == kGoodbyeMagic) {
        peerSaidGoodbye_ = true;
        continue;
      }
      if (incoming_.magic != kMessageMagic)
        return fail(remoteError("garbage from " + peerName() + " on lane " + std::to_string(lane_) +
                                ": bad message magic " + std::to_string(incoming_.magic)));
      haveHeader_ = true;
      matched_ = false;
      incomingDone_ = 0;
      continue;
    }
    if (!matched_) {
      if (recvs_.empty()) return Status::ok();
      LOOM_RETURN_IF_ERROR(matchHead());
    }
    size_t take = std::min(avail, static_cast<size_t>(incoming_.bytes) - incomingDone_);
    if (take > 0)
      std::memcpy(recvs_.front().data + incomingDone_, staging_.get() + stageBegin_, take);
    stageBegin_ += take;
    incomingDone_ += take;
    if (incomingDone_ < incoming_.bytes) return Status::ok();  // the rest comes from the socket
    completeRecv();
  }
}

// Bounds-checks the incoming header against the receive it must fill.
Status SocketConnection::matchHead() {
  const RecvOp& r = recvs_.front();
  if (incoming_.bytes != r.bytes || incoming_.tag != r.tag)
    return fail(remoteError("message mismatch from " + peerName() + " on lane " +
                            std::to_string(lane_) + ": rank " + std::to_string(rank_) +
                            " expected " + describe(r.bytes, r.tag) + ", received " +
                            describe(incoming_.bytes, incoming_.tag)));
  matched_ = true;
  return Status::ok();
}

void SocketConnection::completeRecv() {
  recvs_.pop_front();
  ++recvsCompleted_;
  haveHeader_ = false;
  matched_ = false;
  incomingDone_ = 0;
}

Status SocketConnection::onEndOfStream() {
  endOfStream_ = true;
  if (discarding_) {
    if (sends_.empty()) return Status::ok();
    return fail(remoteError(peerName() + " closed the connection before receiving " +
                            std::to_string(sends_.size()) + " messages on lane " +
                            std::to_string(lane_)));
  }
  if (!peerSaidGoodbye_)
    return fail(remoteError("connection to " + peerName() + " closed unexpectedly on lane " +
                            std::to_string(lane_) + " (the peer exited or the network failed)"));
  return checkPeerGone();
}

Status SocketConnection::streamError(const char* syscall, int err) {
  if (discarding_ && sends_.empty()) {  // closing and owing nothing: a reset is no news
    endOfStream_ = true;
    return Status::ok();
  }
  if (peerSaidGoodbye_) {
    LOOM_RETURN_IF_ERROR(checkPeerGone());
    endOfStream_ = true;
    return Status::ok();
  }
  return fail(remoteError("connection to " + peerName() + " on lane " + std::to_string(lane_) +
                          " failed: " + systemErrorFromErrno(syscall, err).message()));
}

}  // namespace loom::transport::socket
