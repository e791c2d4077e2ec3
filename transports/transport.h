// The transport interface: how bytes move between two ranks (DESIGN.md section 3).
//
// One small, non-blocking interface; every backend (loopback, shm, socket, later cuda_ipc and
// ibverbs) implements it, and one conformance suite (tests/conformance) runs against all.
// Transports see neither topology nor algorithms: the runtime decides which transport serves
// which peer and what to send.
//
// Objects
//   Transport   - one per communicator rank and backend. Publishes an opaque address that the
//                 runtime hands to every peer at init, and creates Connections.
//   Connection  - one per (peer, lane). Two independent FIFO directions: messages posted with
//                 postSend arrive, in posting order, at the receives the peer posts with
//                 postRecv on its Connection for (this rank, same lane).
//
// Message contract
//   - A send of n bytes matches exactly one receive of n bytes; a size or tag mismatch is a
//     RemoteError on the receiver naming both (this is how a mismatched collective shows up
//     instead of corrupting memory). Zero-byte messages are real messages.
//   - Completion is in order per direction, so it is reported as a count: sendsCompleted() is
//     the number of posted sends that are complete (all earlier ones are too). A send is
//     complete when its buffer may be reused; a receive when its data is in place.
//   - Buffers passed to postSend/postRecv must stay valid (and a send buffer unmodified) until
//     the operation completes or the connection is closed.
//
// Threads and blocking
//   - No method blocks (except close(), bounded by its deadline). Progress happens only inside
//     progress() calls; the runtime calls them from whichever thread drives the communicator
//     (never two at once for one Transport and its Connections).
//   - When a transport has nothing to do it must still wake the driver when something arrives:
//     either by ringing the local rank's Doorbell (TransportContext::doorbell) from the peer
//     side, or by listing file descriptors in addPollFds() that become readable/writable.
//
// Failure
//   - A peer that closes, dies or sends garbage turns into a RemoteError from progress() that
//     names the peer rank (and address where there is one). Errors are sticky per connection.
//   - Connections are created lazily: connect() returns at once; the handshake completes in
//     later progress() calls. Operations may be posted before it completes.
#pragma once

#include <poll.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/config.h"
#include "base/doorbell.h"
#include "base/status.h"
#include "base/time.h"

namespace loom::transport {

struct Capabilities {
  std::string name;                 // "loopback", "shm", "socket", "ibverbs"
  bool hostMemory = true;           // can move host buffers
  bool deviceMemory = false;        // can move device buffers
  bool sameHostOnly = false;        // peers must share this rank's host identity
  bool sameProcessOnly = false;     // peers must live in this process
  bool singleCopy = false;          // large messages move with one copy (CMA, direct read)
  double bandwidthBytesPerSec = 0;  // planner estimates, per connection
  double latencySec = 0;
};

// What a transport needs to know about the communicator rank it serves. The runtime fills it
// and keeps it alive longer than the Transport.
struct TransportContext {
  int rank = 0;
  int nranks = 1;
  uint64_t commHash = 0;             // unique per communicator instance (job + split path)
  std::array<uint8_t, 16> secret{};  // the unique id's secret; handshakes prove it
  const Config* config = nullptr;
  std::shared_ptr<Doorbell> doorbell;  // this rank's; ring it / let peers ring it
  const std::atomic<bool>* abortFlag = nullptr;
};

class Connection {
 public:
  virtual ~Connection() = default;

  virtual int peer() const = 0;
  virtual int lane() const = 0;

  // Queue one message / one receive. Never blocks; InvalidUsage after close() or on a
  // connection that has failed (the original error is returned instead when there is one).
  virtual Status postSend(const void* data, size_t bytes, uint64_t tag) = 0;
  virtual Status postRecv(void* data, size_t bytes, uint64_t tag) = 0;

  // Moves as much data as possible without blocking. Returns the connection's sticky error.
  virtual Status progress() = 0;

  virtual uint64_t sendsPosted() const = 0;
  virtual uint64_t sendsCompleted() const = 0;
  virtual uint64_t recvsPosted() const = 0;
  virtual uint64_t recvsCompleted() const = 0;

  // Descriptors the driver should sleep on while this connection has work pending.
  virtual void addPollFds(std::vector<pollfd>* fds) const = 0;

  // Waits (until the deadline) for posted sends to complete, then tears down. Pending receives
  // are abandoned. Safe to call twice.
  virtual Status close(Deadline deadline) = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;

  virtual const Capabilities& capabilities() const = 0;

  // Opaque bytes (at most kMaxAddressBytes) every peer needs to connect to this rank.
  static constexpr size_t kMaxAddressBytes = 256;
  virtual std::string localAddress() const = 0;

  // Starts a connection to `peer` on `lane`. Both ranks of the pair call it (in any order) with
  // the other's address; the pair of calls forms one connection.
  virtual Result<std::unique_ptr<Connection>> connect(int peer, int lane,
                                                      const std::string& peerAddress) = 0;

  // Accepts and routes incoming handshakes. Never blocks.
  virtual Status progress() = 0;
  virtual void addPollFds(std::vector<pollfd>* fds) const = 0;
};

// Factory by name ("loopback", "shm", "socket", "ibverbs"); InvalidArgument for an unknown
// name. A known transport that cannot work on this machine (ibverbs without an RDMA device)
// returns its creation error.
Result<std::unique_ptr<Transport>> createTransport(const std::string& name,
                                                   const TransportContext& context);
// Names of the transports built into this library.
std::vector<std::string> transportNames();

}  // namespace loom::transport
