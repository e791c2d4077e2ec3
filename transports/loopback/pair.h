// The state two loopback ranks share for one (lower rank, higher rank, lane): one message queue
// per direction, each side's doorbell, and each side's closed flag.
//
// Vocabulary: a pair has two *sides*, 0 for the lower rank and 1 for the higher. Direction d
// carries the messages side d sends. The sender only appends to its direction's queue; the
// receiver alone matches, copies (straight from the sender's buffer into its own: one copy) and
// pops, so the queue never needs more than one consumer.
//
// Ownership and lifetime: both sides' connections and the process-wide registry hold the Pair by
// shared_ptr; the registry lets go once both sides have closed it, so the second connect() of a
// pair always finds the first one's state (and learns if that side has already closed).
// Thread-safety: every field below that is not atomic is guarded by `mutex`. The two sides are
// driven by two different threads (or one thread driving both); neither ever blocks on the other
// except for the short critical sections here and, in close(), for a copy already under way.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>

#include "base/doorbell.h"
#include "base/status.h"

namespace loom::transport::loopback {

struct Message {
  const void* data;
  size_t bytes;
  uint64_t tag;
};

struct Direction {
  std::deque<Message> queue;        // posted by the sender, not yet copied; guarded by mutex
  std::atomic<uint64_t> pushed{0};  // messages ever appended (lets the receiver skip the lock)
  std::atomic<uint64_t> copied{0};  // messages delivered: the sender's sendsCompleted()
  bool copying = false;             // the receiver is copying out of queue.front()
};

struct Side {
  bool attached = false;
  bool closed = false;
  std::atomic<bool> closedFlag{false};  // == closed, readable without the lock (hot path)
  DoorbellRef bell;                     // rings this side's driver
};

struct Pair {
  uint64_t commHash = 0;
  int ranks[2] = {0, 0};  // ranks[side]
  int lane = 0;

  std::mutex mutex;
  Side sides[2];
  Direction directions[2];
  // A message mismatch poisons the pair: both sides report it (the receiver classifies it, the
  // sender would otherwise wait forever for a send that can never complete).
  Status failure;
  std::atomic<bool> failed{false};
};

// Process-wide registry of loopback endpoints and pairs.
//
// registerEndpoint claims (commHash, rank) for one Transport (InvalidUsage if another live
// Transport already holds it); unregisterEndpoint releases it. attachPair returns the shared
// state for (commHash, {rank, peer}, lane), creating it when this side is first, and records
// this side's doorbell. A side that attaches to a pair it is already attached to (a reconnect
// after close) gets a fresh pair. detachPair forgets the pair once both sides have closed it.
// All four may be called from any thread.
Status registerEndpoint(uint64_t commHash, int rank);
void unregisterEndpoint(uint64_t commHash, int rank);
std::shared_ptr<Pair> attachPair(uint64_t commHash, int rank, int peer, int lane, DoorbellRef bell);
void detachPair(const std::shared_ptr<Pair>& pair);

}  // namespace loom::transport::loopback
