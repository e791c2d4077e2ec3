// A loopback Connection: one side of a Pair (see pair.h), for ranks that are threads of one
// process.
//
// Differences from the Connection contract in transports/transport.h:
//   - The receiver does the work: its progress() copies each matched message straight from the
//     sender's buffer into the receive buffer, completes both, and rings the sender's doorbell.
//     postSend rings the receiver's doorbell. Neither side lists poll descriptors; a sleeping
//     driver is woken only through TransportContext::doorbell.
//   - There is no handshake: the connection is usable as soon as both sides have called
//     connect(), and operations posted earlier simply wait.
//   - close() waits (sleeping on this rank's doorbell, so call it from the thread that owns that
//     doorbell) until the peer has copied every posted send, then marks this side closed. A
//     send still queued at the deadline is withdrawn before close() returns, so the peer never
//     reads a buffer after close(). Meanwhile the peer's messages are dropped (our receives
//     are abandoned), so two ranks closing at once do not wait for each other. The destructor
//     closes with an expired deadline.
//   - A peer that has closed is an error only for what can no longer complete: a receive with
//     nothing left to match, or a send the peer will never copy ("rank N closed the
//     connection"). An idle connection to a closed peer stays OK, so ranks may finish and
//     close in any order.
#pragma once

#include <deque>
#include <memory>

#include "transports/loopback/pair.h"
#include "transports/transport.h"

namespace loom::transport::loopback {

class LoopbackConnection final : public Connection {
 public:
  // doorbell: this rank's (close() sleeps on it); pair: already attached for this side.
  LoopbackConnection(std::shared_ptr<Pair> pair, int rank, int peer, int lane,
                     std::shared_ptr<Doorbell> doorbell, const std::atomic<bool>* abortFlag);
  ~LoopbackConnection() override;

  int peer() const override { return peer_; }
  int lane() const override { return lane_; }

  Status postSend(const void* data, size_t bytes, uint64_t tag) override;
  Status postRecv(void* data, size_t bytes, uint64_t tag) override;
  Status progress() override;

  uint64_t sendsPosted() const override { return sendsPosted_; }
  uint64_t sendsCompleted() const override;
  uint64_t recvsPosted() const override { return recvsPosted_; }
  uint64_t recvsCompleted() const override { return recvsCompleted_; }

  void addPollFds(std::vector<pollfd>*) const override {}
  Status close(Deadline deadline) override;

 private:
  struct Receive {
    void* data;
    size_t bytes;
    uint64_t tag;
  };

  Status usable() const;
  // Copies matched messages; returns how many receives completed.
  Result<size_t> receiveMatched();
  Status copyOne(const Message& message, const Receive& receive);
  Status mismatch(const Message& message, const Receive& receive);
  Status checkPeerClosed();
  Status fail(Status error);
  void ringPeer();
  Status waitForSends(Deadline deadline);
  size_t discardIncoming();
  bool incomingQueued();
  void markClosed();

  std::shared_ptr<Pair> pair_;
  const int rank_;
  const int peer_;
  const int lane_;
  const int side_;  // 0 for the lower rank of the pair
  std::shared_ptr<Doorbell> doorbell_;
  const std::atomic<bool>* abortFlag_;

  DoorbellRef peerBell_;          // cached once the peer has attached
  std::deque<Receive> receives_;  // posted, not yet complete
  uint64_t sendsPosted_ = 0;
  uint64_t recvsPosted_ = 0;
  uint64_t recvsCompleted_ = 0;
  Status error_;  // sticky
  bool closed_ = false;
};

}  // namespace loom::transport::loopback
