// The host window: direct AllReduce between the processes of one host (docs/ALGORITHMS.md,
// "Direct AllReduce through the host window").
//
// When every rank of a communicator is a separate process on one host, each rank maps one
// shared segment per rank: a header of flags and two buffers of `capacity` bytes. A one_shot or
// two_shot AllReduce (algorithms/allreduce_{one,two}_shot.cpp, which define the same algorithms
// as message schedules) then runs here instead of through the transports: each rank copies its
// input into its own buffer once, and its peers read it where it lies - no message, no FIFO, no
// second copy. Calls longer than the buffer go through it in pieces ("rounds"), each with the
// next sequence number of the communicator, alternating between the two buffers.
//
// Protocol for round `seq` on rank r (buffer seq % 2):
//   1. copy the input piece into the buffer; arrived[r] = seq;
//   2. wait until every arrived[q] >= seq, then
//      one_shot: reduce the whole piece from every buffer, in rank order, into the output;
//      two_shot: reduce chunk r the same way, write it into the output and into this rank's
//      buffer (chunk r of it is read by nobody else); reduced[r] = seq; then copy every peer's
//      finished chunk from its buffer as reduced[q] >= seq;
//   3. done[r] = seq (for stall reports).
// Every flag store is a release and every flag load an acquire; the flags only grow. Reusing a
// buffer needs no wait of its own: rank r stages round seq + 2 into buffer seq % 2 only after
// it saw every arrived[q] >= seq + 1, and q stages seq + 1 only after it finished reading
// everything of round seq.
//
// Waking: a rank that publishes a flag increments its `epoch` and, when a waiter has declared
// itself in `sleepers`, wakes the futex on `epoch` (sequentially consistent on both sides, so a
// waiter either sees the new epoch or is woken). A waiting rank sleeps on the epoch of the peer
// it waits for (Execution::waitInPlace), bounded so that aborts and deadlines are seen.
//
// Mismatch: with each staged input a rank leaves its call's tag (the transports' message tag:
// collective, sequence number, count, type, op); a reader whose own tag differs fails with a
// RemoteError naming both, as a message would - never a silent reduction of the wrong data.
// Failure: a peer that aborts or destroys its communicator sets `gone` (a later call, or one
// waiting for it, fails); a peer process that dies
// is found with kill(pid, 0) while waiting (every 100 ms) when both share a pid namespace (else
// only the deadline finds it). Both are RemoteErrors naming the rank.
// The segments are named /dev/shm/loom-w-<comm hash>-<rank>-<pid> only until every rank has
// mapped every segment; then they are unlinked, so nothing is left behind by a later crash. A
// crash in that short span of init leaves one; the next window created on the host removes it
// (its pid is gone).
//
// Thread-safety: one driver thread per rank uses a window; the header words are atomics shared
// between processes.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "bootstrap/bootstrap.h"
#include "runtime/executor.h"

namespace loom::runtime {

struct alignas(64) WindowHeader {
  // Read by every peer each round: the round whose input is staged, with its call's tag
  // (one cache line, so a peer's look gets both).
  alignas(64) std::atomic<uint64_t> arrived;
  uint64_t tags[2];                           // the staged call's tag, per buffer (seq % 2)
  alignas(64) std::atomic<uint64_t> reduced;  // last round whose owned chunk is final (two_shot)
  alignas(64) std::atomic<uint64_t> done;     // last round finished (diagnostics only)
  alignas(64) std::atomic<uint32_t> epoch;    // bumped on every publish (the futex word)
  std::atomic<uint32_t> sleepers;             // ranks waiting on epoch
  alignas(64) std::atomic<uint32_t> gone;     // 1: this rank aborted or left
  int32_t pid;
  uint64_t pidNamespace;  // inode of /proc/self/ns/pid: pids compare only within one
};

class HostWindow {
 public:
  // Collective over the communicator's bootstrap; every rank calls it (eligible: this rank can
  // use a window: its peers are processes of this host and the window is enabled). Returns
  // nullptr (no window) unless every rank is eligible and every segment was created and mapped;
  // capacity is the smallest any rank asked for, rounded down to 64 bytes.
  static Result<std::unique_ptr<HostWindow>> create(bootstrap::Bootstrap& bootstrap, int rank,
                                                    int nranks, uint64_t commHash, bool eligible,
                                                    size_t capacity);
  ~HostWindow();
  HostWindow(const HostWindow&) = delete;
  HostWindow& operator=(const HostWindow&) = delete;

  int rank() const { return rank_; }
  int nranks() const { return static_cast<int>(maps_.size()); }
  size_t capacity() const { return capacity_; }
  WindowHeader& header(int r) const { return *static_cast<WindowHeader*>(maps_[r]); }
  std::byte* buffer(int r, uint64_t seq) const;

  // Sequence numbers for the rounds of the next call (all ranks take the same ones).
  uint64_t takeRounds(uint64_t rounds) {
    const uint64_t first = nextSeq_;
    nextSeq_ += rounds;
    return first;
  }

  // Stores flag = value (release) on this rank and wakes the peers sleeping on its epoch.
  void publish(std::atomic<uint64_t>& flag, uint64_t value);
  // Sleeps until peer's flag reaches value, its epoch moves, or timeoutMs passes.
  void wait(int peer, const std::atomic<uint64_t> WindowHeader::*flag, uint64_t value,
            int timeoutMs) const;
  // Tells the peers this rank is leaving (abort, destroy): their waits fail.
  void leave();
  // OK, or a RemoteError when peer has left or its process no longer exists.
  Status peerAlive(int peer) const;

 private:
  HostWindow() = default;
  int rank_ = 0;
  size_t capacity_ = 0;
  size_t segmentBytes_ = 0;
  std::vector<void*> maps_;
  uint64_t nextSeq_ = 1;
};

// One AllReduce through the window (one_shot or two_shot), as an Execution the driver runs like
// any other: progress() never blocks.
class DirectExecution final : public Execution {
 public:
  DirectExecution(ExecParams params, HostWindow* window, bool twoShot, const void* input,
                  void* output, uint64_t count, uint64_t tag);

  Status progress(bool* progressed) override;
  bool done() const override { return round_ == rounds_; }
  std::string stallReport(const std::function<std::string(int)>& describePeer) const override;
  bool sleepsInPlace() const override { return true; }
  bool waitInPlace(int timeoutMs) override;

 private:
  enum class Phase { kStage, kWaitArrived, kGather };
  // *ready when every peer's flag >= value; else notReady(the first that is not).
  Status waitFor(const std::atomic<uint64_t> WindowHeader::*flag, uint64_t value, bool* ready);
  // Records peer q as the one waited for (waitInPlace sleeps on it) and checks that it lives.
  Status notReady(int q, const std::atomic<uint64_t> WindowHeader::*flag, uint64_t value);
  Status checkTags(uint64_t seq) const;
  void reduceChunk(uint64_t pieceOffset, uint64_t chunkOffset, uint64_t chunkCount);
  void finishRound(bool* progressed);

  HostWindow* window_;
  bool twoShot_;
  const std::byte* input_;
  std::byte* output_;
  uint64_t count_;
  uint64_t tag_;
  uint64_t pieceElems_;  // elements per round
  uint64_t rounds_;
  uint64_t firstSeq_;
  uint64_t round_ = 0;
  Phase phase_ = Phase::kStage;
  std::vector<bool> copied_;       // two_shot gather: peers' chunks copied this round
  std::vector<const void*> srcs_;  // reduceChunk's sources
  int waitingFor_ = -1;            // the peer the last progress() could not get past
  const std::atomic<uint64_t> WindowHeader::*waitFlag_ = &WindowHeader::arrived;
  uint64_t waitValue_ = 0;
  const char* waitingWhat_ = "";
  int64_t lastLivenessNs_ = 0;
  uint32_t polls_ = 0;  // unsuccessful looks at a peer's flags
};

}  // namespace loom::runtime
