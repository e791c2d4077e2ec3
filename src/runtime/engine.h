// Engine: one communicator rank's transports and connections.
//
// It creates every transport this rank may need, publishes their addresses (PeerInfo), picks a
// transport per peer once the peers' infos are known, and creates connections lazily, the
// first time an execution needs (peer, lane). It owns the rank's Doorbell and abort flag.
//
// Transport choice per peer (LOOM_TRANSPORT=auto): same process -> loopback; same host
// identity -> shm (unless LOOM_SHM_DISABLE); otherwise socket. A forced transport applies to
// every peer and is an error at init if it cannot reach one.
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
  };

  static Result<std::unique_ptr<Engine>> create(Params params);
  ~Engine();

  const PeerInfo& localInfo() const { return local_; }
  // Records every rank's info (index = rank) and chooses a transport per peer.
  Status setPeers(std::vector<PeerInfo> peers);

  // The connection to (peer, lane), created on first use.
  Result<transport::Connection*> connection(int peer, int lane);
  // Accepts handshakes for every transport. Never blocks.
  Status progressTransports();
  // Doorbell plus every transport's and connection's descriptors, for the driver's poll().
  void addPollFds(std::vector<pollfd>* fds) const;

  Doorbell& doorbell() { return *doorbell_; }
  std::atomic<bool>& abortFlag() { return abort_; }
  // Sets the abort flag and wakes the driver.
  void abort();

  const topo::HostMap& hostMap() const { return hosts_; }
  const Config& config() const { return params_.config; }
  int rank() const { return params_.rank; }
  int nranks() const { return params_.nranks; }
  // "rank 3 (host node2, pid 4711, via shm)".
  std::string describePeer(int peer) const;
  std::string transportOf(int peer) const;

  // Closes every connection (waiting for sends until the deadline unless aborted).
  void closeAll(Deadline deadline);

 private:
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
  std::map<std::pair<int, int>, std::unique_ptr<transport::Connection>> connections_;
};

}  // namespace loom::runtime
