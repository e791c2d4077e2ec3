// The shm connection handshake: mutual challenge-response over the job secret, then the
// exchange of each side's receive ring and doorbell descriptors (SCM_RIGHTS).
//
// The lower rank (connector, C) connects to the higher rank's (accepter, A) listening socket:
//   C -> A  Hello      {commHash, from, to, lane, nonceC}
//   A -> C  Challenge  {nonceA, HMAC(secret, "loom-shm-accept"  | Hello | nonceA), A's CMA probe}
//   C -> A  Endpoint   {HMAC(secret, "loom-shm-connect" | Hello | nonceA), ring geometry,
//                       C's CMA probe, direct token} + fds: C's ring, doorbell eventfd and page
//   A -> C  Endpoint   {A's side, no MAC} + fds
// A connector whose Connection is closed before the handshake finished sends a *farewell*
// instead: the same exchange, its Endpoint flagged kEndpointFarewell and without descriptors,
// so the accepter's Connection fails with "closed" instead of waiting for a timeout. (The
// reverse case, A closed first, is answered with kMagicClosed in place of a Challenge.)
// Both sides prove the secret before any memory is shared; the distinct labels stop a reply
// being reflected, the fresh nonces stop replays. Each side probes whether it can read the
// other's memory with process_vm_readv (an 8-byte cookie at a published address) and records
// the result in its own ring *before* handing that ring over, so the peer's first large send
// already knows whether to use CMA. A stranger is logged and dropped without
// disturbing the connections being set up. The socket then stays open as the liveness channel.
//
// Thread-safety: an Acceptor and a Connector are driven by the one thread that drives their
// Transport (transport.h). Nothing here blocks.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/fd.h"
#include "base/status.h"
#include "base/time.h"
#include "transports/shm/ring.h"

namespace loom::transport::shm {

inline constexpr uint64_t kMagic = 0x314d48534d4f4f4cull;        // "LOOMSHM1"
inline constexpr uint64_t kMagicClosed = 0x584d48534d4f4f4cull;  // "LOOMSHMX": A closed first
inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr int kMaxLanes = 4096;
inline constexpr uint32_t kEndpointFarewell = 1;

struct Identity {
  int rank = 0;
  int nranks = 1;
  uint64_t commHash = 0;
  std::array<uint8_t, 16> secret{};
  int64_t timeoutMs = 0;  // bound on every handshake
};

struct HelloMsg {
  uint64_t magic;
  uint32_t version;
  int32_t fromRank;
  int32_t toRank;
  int32_t lane;
  uint64_t commHash;
  uint8_t nonce[16];
};

struct ChallengeMsg {
  uint64_t magic;
  uint8_t nonce[16];
  uint8_t mac[32];
  uint64_t probeAddress;  // see EndpointMsg
  uint64_t probeCookie;
};

struct EndpointMsg {
  uint64_t magic;
  uint8_t mac[32];  // connector only
  uint32_t slotBytes;
  uint32_t slotCount;
  uint64_t probeAddress;  // 8 bytes the peer may read with process_vm_readv...
  uint64_t probeCookie;   // ...and should find equal to this
  uint64_t directToken;   // same process only: the consumer's DirectTable
  int32_t pid;            // informational; the kernel's SO_PEERCRED value is used
  uint32_t flags;         // kEndpointFarewell
};

// What this side offers: its receive ring and doorbell.
struct LocalEndpoint {
  RingGeometry geometry;
  int ringFd = -1;
  int bellEventFd = -1;
  int bellMemFd = -1;
  uint64_t probeAddress = 0;
  uint64_t probeCookie = 0;
  uint64_t directToken = 0;
  bool offerCma = false;           // probe the peer; on success set the flag below
  RingControl* control = nullptr;  // of the ring offered here
};

// A finished handshake: the live socket and what the peer offered.
struct Established {
  UniqueFd socket;
  pid_t pid = 0;  // SO_PEERCRED
  EndpointMsg endpoint{};
  bool readsCma = false;  // connector: its probe of the accepter succeeded (flag already set)
  bool farewell = false;  // accepter: the connector closed before the handshake finished
  UniqueFd ringFd, bellEventFd, bellMemFd;
};

class Connector;

// The listening side of one Transport: accepts connections, authenticates them and holds the
// authenticated ones until the Connection for (peer, lane) takes them.
class Acceptor {
 public:
  static Result<std::shared_ptr<Acceptor>> create(const Identity& identity,
                                                  const std::string& name);
  ~Acceptor();

  // Accepts and authenticates; strangers are logged and dropped. Errors only for failures of
  // the listening socket itself.
  Status progress();
  void addPollFds(std::vector<pollfd>* fds) const;
  // An authenticated connector for (peer, lane), which the caller completes with
  // sendWelcome(); nullopt while there is none.
  std::optional<Established> take(int peer, int lane);
  // The Connection for (peer, lane) was closed before it was established: its connector is
  // told so (now, or when it arrives) rather than left waiting. reopen() when a new
  // Connection for the same (peer, lane) is created.
  void abandon(int peer, int lane);
  void reopen(int peer, int lane) { abandoned_.erase({peer, lane}); }
  // A connector closed before it was established: progress() delivers its farewell.
  void addFarewell(std::unique_ptr<Connector> farewell);

 private:
  struct Inbound;
  explicit Acceptor(const Identity& identity);
  // Returns false when the inbound connection is finished (parked or dropped).
  bool step(Inbound* in);
  bool onHello(Inbound* in);
  bool onEndpoint(Inbound* in);
  void progressFarewells();

  Identity identity_;
  uint64_t probeCookie_ = 0;  // connectors probe CMA by reading it
  UniqueFd listen_;
  std::vector<std::unique_ptr<Inbound>> inflight_;
  std::map<std::pair<int, int>, std::deque<Established>> parked_;
  std::set<std::pair<int, int>> abandoned_;
  std::vector<std::unique_ptr<Connector>> farewells_;
};

// Probes CMA access to the peer described by `e` if `local` offers it; on success sets the
// flag in local.control and returns true.
bool probeAndRecord(pid_t pid, uint64_t address, uint64_t cookie, const LocalEndpoint& local);

// The accepter's reply that completes a handshake taken from the Acceptor.
Status sendWelcome(int socket, const LocalEndpoint& local, const std::string& peer);

// The connecting side of one connection.
class Connector {
 public:
  // A farewell connector only tells the accepter that this side closed (see above).
  Connector(const Identity& identity, int peer, int lane, std::string address,
            bool farewell = false);
  ~Connector();

  // Drives the handshake; sets *done once the peer's endpoint has arrived.
  Status progress(const LocalEndpoint& local, std::optional<Established>* done);
  bool finished() const { return state_ == State::kDone; }
  void addPollFds(std::vector<pollfd>* fds) const;

 private:
  enum class State { kConnect, kAwaitChallenge, kAwaitWelcome, kDone };
  Status tryConnect();
  Status onChallenge(const LocalEndpoint& local);
  Status onWelcome(std::optional<Established>* done);
  void armRetryTimer(int64_t atNs);
  std::string peerName() const;

  Identity identity_;
  int peer_;
  int lane_;
  std::string address_;
  bool farewell_;
  Deadline deadline_;
  State state_ = State::kConnect;
  UniqueFd socket_;
  UniqueFd retryTimer_;  // wakes a sleeping driver when the next connect attempt is due
  int64_t retryAtNs_ = 0;
  int64_t backoffNs_ = 0;
  HelloMsg hello_{};
  pid_t pid_ = 0;
  bool readsCma_ = false;
};

}  // namespace loom::transport::shm
