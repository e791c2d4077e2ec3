// The socket transport's handshake, as two non-blocking state machines (wire.h has the
// messages). Neither ever blocks: advance() does whatever the socket allows now and returns
// false until the handshake is complete; the driver sleeps on pollEvents() in between.
//
// An error from advance() means the handshake failed for good. For the accepter that means
// "reject this socket" (the message says why; the hub logs it and closes the socket); for the
// connector it is wrapped into the connection's sticky RemoteError.
//
// Thread-safety: none; each object is driven by the one thread that drives its transport.
#pragma once

#include <array>
#include <cstdint>
#include <memory>

#include "base/fd.h"
#include "base/socket.h"
#include "base/status.h"
#include "transports/socket/wire.h"

namespace loom::transport::socket {

// Who this rank is, as far as the handshake is concerned.
struct Identity {
  int rank = 0;
  int nranks = 1;
  uint64_t commHash = 0;
  std::array<uint8_t, 16> secret{};
};

// Lanes are small integers; anything larger in a proof is garbage.
constexpr uint32_t kMaxLanes = 1 << 16;

// The options every transport socket gets (TCP_NODELAY; buffers stay autotuned, see .cpp).
Status configureSocket(int fd);

// A fixed-size message being written or read on a non-blocking socket.
struct FixedIo {
  uint8_t bytes[64];
  size_t size = 0;
  size_t done = 0;
  bool complete() const { return done == size; }
};
// Moves as much of io as the socket takes now. An end of stream while reading is an error.
Status writeSome(int fd, FixedIo* io);
Status readSome(int fd, FixedIo* io);

class AcceptHandshake {
 public:
  // Takes an accepted socket; the challenge is drawn here.
  static Result<std::unique_ptr<AcceptHandshake>> create(UniqueFd fd, SocketAddress remote,
                                                         Deadline deadline);

  // True once the proof has been verified and the ack written.
  Result<bool> advance(const Identity& me);
  short pollEvents() const;
  bool expired() const { return deadline_.expired(); }

  int fd() const { return fd_.get(); }
  const SocketAddress& remote() const { return remote_; }
  int peerRank() const { return static_cast<int>(proof_.rank); }
  int lane() const { return static_cast<int>(proof_.lane); }
  UniqueFd takeFd() { return std::move(fd_); }

 private:
  enum class State { kSendChallenge, kReadProof, kSendAck, kDone };
  AcceptHandshake(UniqueFd fd, SocketAddress remote, Deadline deadline)
      : fd_(std::move(fd)), remote_(remote), deadline_(deadline) {}
  Status verify(const Identity& me);

  UniqueFd fd_;
  SocketAddress remote_;
  Deadline deadline_;
  State state_ = State::kSendChallenge;
  Challenge challenge_{};
  Proof proof_;
  FixedIo io_;
};

class ConnectHandshake {
 public:
  // Creates a socket and starts a non-blocking connect to the accepter's listener.
  static Result<std::unique_ptr<ConnectHandshake>> start(const SocketAddress& peer, int peerRank,
                                                         int lane);

  // True once the accepter's ack has been verified.
  Result<bool> advance(const Identity& me);
  short pollEvents() const;

  int fd() const { return fd_.get(); }
  UniqueFd takeFd() { return std::move(fd_); }

 private:
  enum class State { kConnecting, kReadChallenge, kSendProof, kReadAck, kDone };
  ConnectHandshake(UniqueFd fd, int peerRank, int lane)
      : fd_(std::move(fd)), peerRank_(peerRank), lane_(lane) {}
  Result<bool> connected();
  Status verifyAck(const Identity& me);

  UniqueFd fd_;
  int peerRank_;
  int lane_;
  State state_ = State::kConnecting;
  Challenge challenge_{};
  FixedIo io_;
};

}  // namespace loom::transport::socket
