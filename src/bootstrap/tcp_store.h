// The TCP rendezvous store: TcpStoreServer (the "root" every rank of a job connects to) and
// TcpStoreClient (a Store that talks to it). The wire protocol is in tcp_store_wire.h.
//
// Security: every connection proves knowledge of the job's 128-bit secret (carried by the
// UniqueId) with a mutual HMAC-SHA-256 challenge-response; the secret never crosses the wire.
// A connection that fails (a port scanner, a rank of a stale or different job, garbage) is
// dropped and logged at WARN with its address; everyone else keeps being served. Every length
// read from the wire is checked against a limit before anything is allocated.
//
// Lifetime of a server (why it stops by itself): a root started by loomGetUniqueId or by rank 0
// of a launcher job must not outlive its job, and nobody may be left to stop it. It stops
//   - once at least nranks distinct ranks have connected and all of them have disconnected
//     (nranks comes from the ranks' own hellos: the job size is not known before);
//   - when no rank has been connected for Options::idleTimeoutMs (nobody came, or the job
//     died before every rank registered);
//   - when its owner calls stop() or destroys it.
// Keys live in the server's memory and die with it.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/fd.h"
#include "base/socket.h"
#include "base/status.h"
#include "base/time.h"
#include "bootstrap/store.h"
#include "bootstrap/unique_id.h"

namespace loom::bootstrap {

using Secret = std::array<uint8_t, 16>;

// One rendezvous root: a background thread running a poll() loop over the listener and every
// client (non-blocking sockets, per-client buffers). A GET of a missing key is parked, never
// blocking the loop, and answered when the key is set.
//
// Thread-safety: every method may be called from any thread. stop() (and the destructor) join
// the server thread, so they must not be called from it (they are not: it runs no user code).
class TcpStoreServer {
 public:
  struct Options {
    // Stop when no rank has been connected for this long.
    int64_t idleTimeoutMs = 30 * 60 * 1000;
    // A connection must complete the handshake within this time, or it is dropped.
    int64_t handshakeTimeoutMs = 30 * 1000;
    // Connections (authenticated or not) served at once; a connection beyond it is closed.
    size_t maxClients = 4096;
    // Unread replies queued for one client; a client that stops reading is dropped past it.
    size_t maxQueuedReplyBytes = size_t{4} * (64 << 20) + (1 << 20);
  };
  enum class State { kRunning, kFinished, kIdle, kStopped, kFailed };

  // Binds (port 0 picks a free port; address() tells which) and starts the server thread.
  // SystemError naming the address if it cannot listen (e.g. the port is taken).
  static Result<std::shared_ptr<TcpStoreServer>> start(SocketAddress bind, Secret secret,
                                                       Options options);
  static Result<std::shared_ptr<TcpStoreServer>> start(SocketAddress bind, Secret secret) {
    return start(std::move(bind), secret, Options());
  }
  ~TcpStoreServer();
  TcpStoreServer(const TcpStoreServer&) = delete;
  TcpStoreServer& operator=(const TcpStoreServer&) = delete;

  // The address it listens on, with the real port.
  const SocketAddress& address() const { return address_; }
  // Closes every connection and joins the thread. Idempotent.
  void stop();
  bool running() const { return state() == State::kRunning; }
  State state() const;
  // Blocks until the server has stopped (by itself or by stop()) or the deadline passes;
  // returns whether it has stopped.
  bool waitStopped(Deadline deadline) const;

  // Diagnostics and tests: authenticated connections now, and connections dropped so far.
  size_t connectedClients() const;
  size_t droppedConnections() const;

 private:
  struct Loop;
  TcpStoreServer() = default;

  SocketAddress address_;
  std::unique_ptr<Loop> loop_;
  std::thread thread_;
  std::mutex joinMu_;
  int ownerPid_ = 0;
};

// Starts a root that belongs to a process-wide keeper instead of the caller, so that it lives
// exactly as long as its job needs it (the lifetime rules above) however the caller's objects
// come and go: what loomGetUniqueId and rank 0 of a launcher job use. Finished roots are reaped
// on each call. At process exit the keeper stops the roots still running, after waiting up to
// 3 s for their clients to disconnect (ranks in other processes may be finishing a last
// barrier). The root lives in this process: when the process exits, the job loses its store.
// Returns the bound address. Thread-safe.
Result<SocketAddress> startDetachedRoot(SocketAddress bind, Secret secret,
                                        TcpStoreServer::Options options = {});
// Roots the keeper still runs (reaps finished ones first). Diagnostics and tests.
size_t detachedRootCount();

// loomGetUniqueId's work: a fresh random secret and a detached root listening on this host's
// advertised address (socketIfname: LOOM_SOCKET_IFNAME's syntax) with an ephemeral port.
Result<UniqueId> createUniqueId(const std::string& socketIfname);

// A Store over one authenticated connection to a TcpStoreServer.
//
// Thread-safety: fully thread-safe; calls from several threads proceed concurrently (requests
// carry ids and replies are matched to them), so a GET that waits long does not hold up other
// threads' SETs. get() blocks until the key exists, the deadline, or *cancel; set(), add(),
// tryGet() and erasePrefix() block for one round trip, at most the request timeout.
// Errors: the root going away is a sticky RemoteError naming the root's address.
// Lifetime: the connection closes when the last shared_ptr goes; the server counts this rank
// as gone then (see the server's lifetime rules), so keep the client while the job may still
// need the store (e.g. for communicator splits).
class TcpStoreClient final : public Store {
 public:
  static constexpr int64_t kDefaultRequestTimeoutMs = 10 * 60 * 1000;

  // Connects to id.root (retrying until the deadline while nobody listens yet), authenticates
  // with id.secret and registers as `rank` of a job of `nranks`.
  //   Timeout        no root listening before the deadline
  //   InvalidUsage   the root rejected this id (stale, or from another job), or it serves a
  //                  job with a different nranks
  //   Aborted        *cancel became true
  static Result<std::shared_ptr<TcpStoreClient>> connect(
      const UniqueId& id, int rank, int nranks, Deadline deadline,
      const std::atomic<bool>* cancel = nullptr,
      int64_t requestTimeoutMs = kDefaultRequestTimeoutMs);
  ~TcpStoreClient() override;

  Status set(const std::string& key, const Bytes& value) override;
  Result<Bytes> get(const std::string& key, Deadline deadline,
                    const std::atomic<bool>* cancel = nullptr) override;
  Result<int64_t> add(const std::string& key, int64_t delta) override;
  Status erasePrefix(const std::string& prefix) override;
  Result<std::optional<Bytes>> tryGet(const std::string& key) override;

  const SocketAddress& root() const { return root_; }

 private:
  struct Reply {
    uint8_t status = 0;
    Bytes payload;
  };
  struct Pending {
    bool done = false;
    Reply reply;
  };
  struct Frame {
    uint64_t id;
    Reply reply;
  };

  TcpStoreClient(UniqueFd fd, SocketAddress root, int64_t requestTimeoutMs);
  Result<Reply> request(uint8_t op, const std::string& key, const uint8_t* value, size_t bytes,
                        Deadline deadline, const std::atomic<bool>* cancel);
  Status sendFrame(const std::vector<uint8_t>& frame, Deadline deadline);
  Status readSome(int timeoutMs, std::vector<Frame>* frames);
  Status checkKey(const std::string& key) const;

  UniqueFd fd_;
  SocketAddress root_;
  std::string rootName_;  // "rendezvous root at 1.2.3.4:5"
  int64_t requestTimeoutMs_;

  std::mutex sendMu_;  // serialises whole frames on the socket

  std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  uint64_t nextId_ = 1;
  std::map<uint64_t, Pending*> pending_;  // owned by the waiting callers' stacks
  bool readerActive_ = false;             // one waiter at a time reads the socket
  Status broken_;                         // sticky: the connection is unusable

  // Touched only by the active reader.
  std::vector<uint8_t> rx_;
  size_t rxOffset_ = 0;
};

}  // namespace loom::bootstrap
