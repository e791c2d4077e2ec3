// The life of one ibverbs connection, as a state machine without verbs calls (the connection
// performs each step; this object decides which steps are legal and keeps the sticky error).
//
//   kInit      QPs created and moved RESET -> INIT, receives posted (a peer may write as soon
//              as it knows our QPs, so receives come first)
//   kExchange  this side's ConnInfo sent over the control stream, waiting for the peer's
//   kRtr       QPs are ready to receive (INIT -> RTR with the peer's QP numbers, LID/GID, PSN)
//   kRts       QPs are ready to send (RTR -> RTS); "ready" sent, waiting for the peer's
//   kOpen      the peer is ready too (so its QPs accept our writes): data flows
//   kClosed    close() finished or the peer said goodbye and nothing is owed (terminal)
//   kFailed    an error happened; error() is sticky (terminal)
//
// The phases only move forward, one at a time, except that any live phase may close or fail.
// Every error is a RemoteError that names the peer and the local device and port, so that a
// port going down or a peer dying reads as "connection to rank 3 (host b) on mlx5_0:1: ...".
//
// Thread-safety: none (the connection's driver thread).
#pragma once

#include <string>

#include "base/status.h"

namespace loom::transport::ibverbs {

enum class Phase { kInit, kExchange, kRtr, kRts, kOpen, kClosed, kFailed };
const char* phaseName(Phase phase);

class ConnectionState {
 public:
  // who: "rank 3 (host b)"; where: "mlx5_0:1".
  ConnectionState(std::string who, std::string where);

  Phase phase() const { return phase_; }
  bool open() const { return phase_ == Phase::kOpen; }
  bool terminal() const { return phase_ == Phase::kClosed || phase_ == Phase::kFailed; }
  const Status& error() const { return error_; }
  // "connection to rank 3 (host b) on mlx5_0:1"
  std::string describe() const;

  // Moves to the next phase. Internal error for anything but the next live phase (a bug).
  Status advance(Phase next);
  // Records the first error (later ones are ignored) as a RemoteError carrying describe(),
  // moves to kFailed and returns the sticky error. A failure after close() is ignored.
  Status fail(const Status& error);
  void close();

  // OK while operations may be posted: the sticky error once failed, InvalidUsage after close.
  Status usable() const;

 private:
  std::string who_;
  std::string where_;
  Phase phase_ = Phase::kInit;
  Status error_;
};

}  // namespace loom::transport::ibverbs
