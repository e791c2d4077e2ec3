// FaultPlan: which faults the fault-injecting transport (fault_transport.h) applies, and where.
//
// A plan is a list of rules. A rule picks messages by the rank that sends them, the peer they
// go to, the lane, and the message's index on that connection direction (0 = the first
// message this rank posts to that peer on that lane), and says what happens to them:
//
//   delay     the message (and, to keep the connection's FIFO order, every later message of the
//             connection) is held back `ms` milliseconds before the real transport sees it.
//             Applied to one lane or peer only, it reorders traffic across connections, which
//             is the only reordering the transport contract allows (transport.h).
//   drop      the message is never sent; the sender sees it complete. The receiver waits.
//   short     the message is sent `bytes` shorter (default: half its size, at least 1 byte),
//             under its own tag: a short write as the receiver would see it.
//   corrupt   the message's header is damaged: its tag is flipped.
//   close     the connection is closed abruptly (pending sends are abandoned).
//   crash     the sending rank "dies" in place: every connection of its transport closes
//             abruptly and its own operations fail (ranks as threads cannot be SIGKILLed).
//   kill      the sending process raises SIGKILL (ranks as processes).
//
// Text form (for worker command lines and test names), rules separated by ';':
//   "drop:rank=1,peer=0,lane=0,msg=3;delay:rank=0,ms=50"
// Omitted selectors match everything (msg omitted: every message).
//
// Thread-safety: a plan is an immutable value once built. The counter of fired faults
// (FaultCounters) is shared and atomic.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace loom::transport::fault {

enum class FaultKind { kDelay, kDrop, kShortWrite, kCorruptHeader, kClose, kCrash, kKill };

const char* faultKindName(FaultKind kind);

struct FaultRule {
  FaultKind kind = FaultKind::kDelay;
  int rank = -1;           // sending rank; -1 = any
  int peer = -1;           // receiving rank; -1 = any
  int lane = -1;           // -1 = any
  int64_t message = -1;    // index on the connection direction; -1 = every message
  int64_t delayMs = 0;     // kDelay
  int64_t shortBytes = 0;  // kShortWrite: bytes removed (0 = half the message, at least 1)

  bool matches(int rankIn, int peerIn, int laneIn, int64_t messageIn) const;
  std::string toString() const;
};

// How often each kind fired, across every connection that shares the counters.
struct FaultCounters {
  std::atomic<int64_t> fired[7] = {};
  int64_t count(FaultKind kind) const { return fired[static_cast<int>(kind)].load(); }
};

struct FaultPlan {
  std::vector<FaultRule> rules;
  std::shared_ptr<FaultCounters> counters = std::make_shared<FaultCounters>();

  // The first rule that applies to message `message` from rank to peer on lane, or nullptr.
  const FaultRule* find(int rank, int peer, int lane, int64_t message) const;
  // InvalidArgument naming the bad rule or field.
  static Result<FaultPlan> parse(std::string_view text);
  std::string toString() const;
};

}  // namespace loom::transport::fault
