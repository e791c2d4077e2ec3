// A socket Connection: one TCP stream per (peer pair, lane). The lower rank connects, the higher
// rank accepts through its Hub; both then run the same data path (wire.h has the format).
//
// Differences from the Connection contract in transports/transport.h:
//   - Wakeups are file descriptors only (this transport never rings a doorbell): the socket
//     with POLLIN while anything can be read (so a dying peer is noticed at once), POLLOUT
//     while sends are queued; during the handshake, the handshake's socket, or for an
//     accepting connection the Hub's listener and handshake sockets.
//   - progress() of an accepting connection also runs the Hub (accept + handshakes), so a driver
//     that only progresses its connections still gets connected.
//   - A send completes when all of it has been handed to the kernel; a receive when its payload
//     is in the user's buffer. Payloads are read straight into the posted buffer; only bytes
//     that arrive ahead of their receive (headers, small messages) pass through a 32 KiB
//     staging buffer.
//   - close() flushes queued sends (reading and discarding whatever arrives meanwhile, so two
//     ranks closing at once cannot wedge each other), then sends a Goodbye and shuts the stream.
//     A connection that owes nothing and is not open yet does not wait for its peer; the Hub
//     answers the peer with a Goodbye later (see hub.h), as long as the transport is still
//     progressed. The destructor does the same without blocking and abandons queued sends.
//   - A peer that said Goodbye is an error only for what can no longer complete (receives or
//     sends pending: "rank N (addr) closed the connection"); an end of stream without Goodbye,
//     a reset, or garbage is a sticky RemoteError at once ("connection to rank N (addr) closed
//     unexpectedly"). Once failed, the socket is shut down so the peer notices too.
//
// Ownership: holds the Hub (shared); must be driven by the thread that drives its transport.
#pragma once

#include <sys/uio.h>

#include <deque>
#include <memory>
#include <string>

#include "base/fd.h"
#include "base/socket.h"
#include "transports/socket/handshake.h"
#include "transports/socket/hub.h"
#include "transports/socket/wire.h"
#include "transports/transport.h"

namespace loom::transport::socket {

class SocketConnection final : public Connection {
 public:
  static constexpr size_t kStagingBytes = 32 << 10;

  // peerAddress: the peer's listener (the connector dials it; the accepter only names it).
  static Result<std::unique_ptr<SocketConnection>> create(std::shared_ptr<Hub> hub, int peer,
                                                          int lane,
                                                          const SocketAddress& peerAddress);
  ~SocketConnection() override;

  int peer() const override { return peer_; }
  int lane() const override { return lane_; }

  Status postSend(const void* data, size_t bytes, uint64_t tag) override;
  Status postRecv(void* data, size_t bytes, uint64_t tag) override;
  Status progress() override;

  uint64_t sendsPosted() const override { return sendsPosted_; }
  uint64_t sendsCompleted() const override { return sendsCompleted_; }
  uint64_t recvsPosted() const override { return recvsPosted_; }
  uint64_t recvsCompleted() const override { return recvsCompleted_; }

  void addPollFds(std::vector<pollfd>* fds) const override;
  Status close(Deadline deadline) override;

  // The Hub hands over the proven socket of an accepting connection.
  void adopt(UniqueFd fd, const SocketAddress& remote);

 private:
  enum class State { kConnecting, kWaitingForPeer, kOpen, kClosed };
  struct SendOp {
    const uint8_t* data;
    size_t bytes;
    uint8_t header[kHeaderBytes];
  };
  struct RecvOp {
    uint8_t* data;
    size_t bytes;
    uint64_t tag;
  };

  SocketConnection(std::shared_ptr<Hub> hub, int peer, int lane, const SocketAddress& peerAddress);
  std::string peerName() const;
  Status usable() const;
  Status fail(Status error);
  Status advanceSetup();
  Status checkPeerGone();

  // The data path (socket_stream.cpp).
  Status progressSends();
  void completeSent(size_t sent);
  Status progressRecvs();
  Status consumeStaged();
  Status matchHead();
  void completeRecv();
  Status onEndOfStream();
  Status streamError(const char* syscall, int err);

  // close() helpers.
  void farewell();
  Status flushForClose(Deadline deadline);
  Status sendGoodbye(Deadline deadline);
  Status waitForIo(Deadline deadline, short alsoEvents = 0);

  std::shared_ptr<Hub> hub_;
  const int rank_;
  const int peer_;
  const int lane_;
  const SocketAddress peerAddress_;
  SocketAddress remote_;  // the socket's other end, once open
  State state_;
  std::unique_ptr<ConnectHandshake> handshake_;
  UniqueFd fd_;
  Status error_;  // sticky

  std::deque<SendOp> sends_;
  size_t sendOffset_ = 0;  // bytes of sends_.front() (header + payload) already written
  uint64_t sendsPosted_ = 0;
  uint64_t sendsCompleted_ = 0;

  std::deque<RecvOp> recvs_;
  uint64_t recvsPosted_ = 0;
  uint64_t recvsCompleted_ = 0;
  std::unique_ptr<uint8_t[]> staging_;
  size_t stageBegin_ = 0;
  size_t stageEnd_ = 0;
  bool haveHeader_ = false;  // incoming_ is the message being received
  bool matched_ = false;     // ... and recvs_.front() is its receive
  Header incoming_;
  size_t incomingDone_ = 0;  // payload bytes of incoming_ already in the receive buffer
  bool peerSaidGoodbye_ = false;
  bool endOfStream_ = false;
  bool discarding_ = false;  // closing: incoming bytes are read and dropped
};

}  // namespace loom::transport::socket
