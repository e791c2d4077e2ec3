// Test harness for the shm transport: two ranks as threads of this process or as fork()ed
// children, a driver that spins and then really sleeps on the doorbell (so lost wakeups show up
// as deadline failures), and a barrier between the two ranks.
//
// Every wait has a deadline; forked children are killed and reaped by the parent whatever
// happens. Children never return into GoogleTest: they _exit() with the body's status.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/config.h"
#include "base/doorbell.h"
#include "base/status.h"
#include "transports/shm/shm_connection.h"
#include "transports/shm/shm_transport.h"
#include "transports/transport.h"

namespace loom::transport::shm::testing {

enum class Mode { kThreads, kProcesses };
const char* modeName(Mode mode);

inline constexpr int64_t kTestTimeoutMs = 20000;
using Secret = std::array<uint8_t, 16>;

class Barrier;

// One rank: its context, transport and connections.
struct RankEnv {
  int rank = 0;
  Mode mode = Mode::kThreads;
  Config config;
  TransportContext context;
  ShmOptions options;
  std::unique_ptr<Transport> transport;
  std::vector<std::unique_ptr<Connection>> connections;
  std::string peerAddress;
  Barrier* barrier = nullptr;
  bool sleepWhenIdle = false;  // driver arms the doorbell and polls after spinning spinUs
  int64_t spinUs = 20;

  // Connects lane `lane` to the other rank of the pair (peer = 1 - rank).
  Result<Connection*> connect(int lane);
  ShmConnection* shm(Connection* c) { return dynamic_cast<ShmConnection*>(c); }
  // Drives the transport and every connection until done() or the deadline (Timeout).
  Status waitFor(const std::function<bool()>& done, int64_t timeoutMs = kTestTimeoutMs);
  // Waits for every posted operation of `c` to complete.
  Status waitIdle(Connection* c, int64_t timeoutMs = kTestTimeoutMs);
  // Both ranks reach this point (Timeout otherwise).
  Status sync(int64_t timeoutMs = kTestTimeoutMs);
  // sync(), driving the transport and every connection until the other rank arrives.
  Status syncProgressing(int64_t timeoutMs = kTestTimeoutMs);
  Status progressAll();
};

Secret testSecret();
uint64_t randomCommHash();
Result<std::unique_ptr<RankEnv>> makeRank(int rank, int nranks, uint64_t commHash,
                                          const Secret& secret, const ShmOptions& options);

using RankBody = std::function<Status(RankEnv&)>;
struct PairOptions {
  Mode mode = Mode::kThreads;
  ShmOptions shm;
  bool sleepWhenIdle = false;
  int64_t spinUs = 20;
  int64_t timeoutMs = 60000;
};
// Runs body0 as rank 0 and body1 as rank 1; OK only if both return OK. The error names the
// failing rank(s).
Status runPair(const PairOptions& options, const RankBody& body0, const RankBody& body1);

// A forked child running `body`; killed with SIGKILL and reaped by the destructor.
class Child {
 public:
  explicit Child(const std::function<int()>& body);
  ~Child();
  pid_t pid() const { return pid_; }
  // Waits for the exit; returns the exit code, or -signal, or -1000 on timeout.
  int wait(int64_t timeoutMs);
  void kill();

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

// Deterministic message contents, so each receive can be checked byte by byte.
void fillPattern(uint8_t* data, size_t bytes, uint64_t seed);
bool checkPattern(const uint8_t* data, size_t bytes, uint64_t seed);

}  // namespace loom::transport::shm::testing
