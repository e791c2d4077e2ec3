// Engine: one communicator rank's transports and connections.
//
// It creates every transport this rank may need, publishes their addresses (PeerInfo), picks a
// transport per peer once the peers' infos are known, and creates connections lazily, the
// first time an execution needs (peer, lane). It owns the rank's Doorbell and abort flag.
//
// Transport choice per peer (LOOM_TRANSPORT=auto): same process -> loopback; same host
// identity -> shm (unless LOOM_SHM_DISABLE); another host -> ibverbs when both ranks have an
// active RDMA port (unless LOOM_IB_DISABLE), otherwise socket. A forced transport applies to
// every peer and is an error at init if it cannot reach one. ibverbs is optional in both
// modes: where it cannot be created (no RDMA device) auto says so once at INFO and a forced
// LOOM_TRANSPORT=ibverbs falls back to socket with a WARN line.
//
// Ownership: the Engine owns transports and connections; Executions borrow connections.
// Thread-safety: one driver thread at a time (the communicator's engine lock); abort() and
// the abort flag may be used from any thread.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/config.h"
#include "base/doorbell.h"
#include "base/status.h"
#include "bootstrap/store.h"
#include "topology/host_map.h"
#include "transports/transport.h"

namespace loom::runtime {

struct PeerInfo {
  int rank = 0;
  int64_t pid = 0;
  std::string hostId;
  std::string hostName;
  std::vector<std::pair<std::string, std::string>> addresses;  // transport name -> address
  int32_t cpus = 1;    // CPUs the process may run on (usableCpus)
  std::string tuning;  // the cost-model profile text this rank loaded ("" = built-in)
  static constexpr size_t kMaxTuningBytes = 16384;  // with measured.np<N> lines for several N

  bootstrap::Bytes serialize() const;
  static Result<PeerInfo> parse(const bootstrap::Bytes& bytes, int expectedRank);
};

class Engine {
 public:
  struct Params {
    int rank = 0;
    int nranks = 1;
    uint64_t commHash = 0;
    std::array<uint8_t, 16> secret{};
    Config config;
    std::string tuning;  // published in PeerInfo: every rank plans with rank 0's
  };

  static Result<std::unique_ptr<Engine>> create(Params params);
  ~Engine();

  const PeerInfo& localInfo() const { return local_; }
  // Every rank's info, after setPeers (index = rank).
  const PeerInfo& peerInfo(int rank) const { return peers_[rank]; }
  // Records every rank's info (index = rank) and chooses a transport per peer.
  Status setPeers(std::vector<PeerInfo> peers);

  // The connection to (peer, lane), created on first use.
  Result<transport::Connection*> connection(int peer, int lane);
  // Accepts handshakes for every transport and moves lingering sends. Never blocks.
  Status progressTransports();
  // Keeps progressing `conn` until every send posted on it completed: a finished operation
  // may leave an eager zero-byte send queued (e.g. behind a handshake) that no later operation
  // touches, and its peer waits for it.
  void linger(transport::Connection* conn);
  bool lingering() const { return !lingering_.empty(); }
  // Doorbell plus every transport's and connection's descriptors, for the driver's poll().
  void addPollFds(std::vector<pollfd>* fds) const;

  Doorbell& doorbell() { return *doorbell_; }
  std::atomic<bool>& abortFlag() { return abort_; }
  // Sets the abort flag and wakes the driver.
  void abort();
  // The same, async-signal-safe: an atomic store and a write() to the doorbell's eventfd, no
  // locks, no allocation. For watchdogs and signal handlers.
  void abortSignalSafe();

  const topo::HostMap& hostMap() const { return hosts_; }
  // More ranks of this communicator on this host than CPUs this process may run on: waiting
  // ranks then yield their CPU instead of spinning on it.
  bool oversubscribed() const { return oversubscribed_; }
  // Whether any host of the communicator is oversubscribed (the same answer on every rank).
  bool anyOversubscribed() const { return anyOversubscribed_; }
  const Config& config() const { return params_.config; }
  int rank() const { return params_.rank; }
  int nranks() const { return params_.nranks; }
  // "rank 3 (host node2, pid 4711, via shm)".
  std::string describePeer(int peer) const;
  std::string transportOf(int peer) const;

  // Closes every connection (waiting for sends until the deadline unless aborted).
  void closeAll(Deadline deadline);
  // After a sticky failure: closes every connection at once, withdrawing posted sends and
  // receives, but keeps the objects (executions may still hold them; they do nothing now).
  void revokeAll();

 private:
  static bool ibverbsBuilt();
  bool ibverbsUnavailable(const Status& why);
  explicit Engine(Params params) : params_(std::move(params)) {}
  Result<std::string> chooseTransport(int peer) const;

  Params params_;
  std::shared_ptr<Doorbell> doorbell_;
  std::atomic<bool> abort_{false};
  transport::TransportContext context_;
  std::map<std::string, std::unique_ptr<transport::Transport>> transports_;
  PeerInfo local_;
  std::vector<PeerInfo> peers_;
  std::vector<std::string> peerTransport_;
  topo::HostMap hosts_;
  bool oversubscribed_ = false;
  bool anyOversubscribed_ = false;
  std::vector<transport::Connection*> lingering_;
  static constexpr int64_t kTransportPollNs = 250'000;
  int64_t lastTransportPollNs_ = 0;
  uint32_t transportPolls_ = 0;
  std::map<std::pair<int, int>, std::unique_ptr<transport::Connection>> connections_;
};

}  // namespace loom::runtime
