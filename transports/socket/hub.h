// The socket transport's accepting side: the listener, the handshakes in progress on accepted
// sockets, and the routing of each proven socket to the Connection for its (rank, lane).
//
// A proven socket may arrive before this rank has called connect() for that pair (the lower
// rank got there first); it is parked until connect() registers a waiter. A socket that fails
// the proof (a port scanner, a process of a stale job, another communicator) or does not finish
// the handshake before the deadline is closed and logged once at WARN with its address; nothing
// else is affected.
//
// A connection closed before its socket was open still tells its peer: an accepter leaves a
// marker, and the peer, when it comes, is answered with a Goodbye; a connector hands its
// unfinished handshake to the hub, which completes it and says Goodbye. Both need progress()
// to be called after the close (the runtime keeps driving the transport until it destroys it).
//
// Ownership and lifetime: the SocketTransport and every accepting SocketConnection share the Hub
// (shared_ptr), so they may be destroyed in any order. Waiters are raw pointers that a
// connection removes (cancelWait) before it goes away.
// Thread-safety: none; the hub is driven by the thread that drives its transport.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "base/fd.h"
#include "base/socket.h"
#include "transports/socket/handshake.h"
#include "transports/transport.h"

namespace loom::transport::socket {

class SocketConnection;

class Hub {
 public:
  // Listens on findInterfaceAddress(config->socketIfname) with an ephemeral port.
  static Result<std::shared_ptr<Hub>> create(const TransportContext& context);

  const Identity& identity() const { return identity_; }
  const SocketAddress& address() const { return address_; }
  const std::atomic<bool>* abortFlag() const { return abortFlag_; }

  // Accepts, advances handshakes and routes proven sockets. Never blocks; errors of individual
  // sockets are handled here (reject and log) and never returned.
  Status progress();
  // The listener (while anyone waits for a peer) and every socket mid-handshake.
  void addPollFds(std::vector<pollfd>* fds) const;

  // conn wants the socket of (rank, lane); it gets it through SocketConnection::adopt, at once
  // when it is already parked. InvalidUsage if another connection already waits for it.
  Status waitFor(int rank, int lane, SocketConnection* conn);
  void cancelWait(int rank, int lane, SocketConnection* conn);
  // conn was closed before its peer arrived: when the peer does, finish the handshake and say
  // Goodbye, so the peer learns of the close instead of waiting for nothing.
  void closeWait(int rank, int lane, SocketConnection* conn);
  // A connector closed mid-handshake: the hub finishes the handshake (bounded by the handshake
  // deadline) and then says Goodbye, for the same reason.
  void adoptFarewell(std::unique_ptr<ConnectHandshake> handshake);

 private:
  struct Parked {
    UniqueFd fd;
    SocketAddress remote;
  };
  using Key = std::pair<int, int>;  // (rank, lane)

  Hub() = default;
  void acceptAll();
  // Advances one handshake; false when it is finished (routed or rejected).
  bool step(AcceptHandshake* h);
  void route(AcceptHandshake* h);
  void reject(const SocketAddress& remote, const Status& why);
  bool active() const {
    return !waiters_.empty() || !handshakes_.empty() || !closed_.empty() || !farewells_.empty();
  }
  void progressFarewells();

  Identity identity_;
  const std::atomic<bool>* abortFlag_ = nullptr;
  int64_t handshakeTimeoutMs_ = 0;
  UniqueFd listener_;
  SocketAddress address_;
  std::vector<std::unique_ptr<AcceptHandshake>> handshakes_;
  std::map<Key, Parked> parked_;
  std::map<Key, SocketConnection*> waiters_;
  std::set<Key> closed_;  // closed before the peer arrived
  struct Farewell {
    std::unique_ptr<ConnectHandshake> handshake;
    Deadline deadline;
  };
  std::vector<Farewell> farewells_;
};

}  // namespace loom::transport::socket
