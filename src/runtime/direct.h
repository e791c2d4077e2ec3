// The host window: direct collectives between the processes of one host (docs/ALGORITHMS.md,
// "AllReduce: one_shot and two_shot" and "One shot for the other collectives").
//
// When every rank of a communicator is a separate process on one host, each rank maps one
// shared segment per rank: a header of flags and kWindowSlots (4) buffers of `capacity` bytes. The
// one-shot collectives and two_shot AllReduce (algorithms/*_one_shot.cpp, allreduce_two_shot.cpp,
// which define the same algorithms as message schedules) then run here instead of through the
// transports: each rank copies its input into its own buffer once, and its peers read it where
// it lies - no message, no FIFO, no second copy. Calls longer than the buffer go through it in
// pieces ("rounds"), each with the next sequence number of the communicator, in the buffers
// in turn. Pieces of at most kInlineBytes are staged beside the arrival flag.
//
// Protocol for round `seq` on rank r (buffer seq % kWindowSlots, K = kWindowSlots = 4):
//   1. if anyone reads what r stages this round (not a Broadcast's non-root, nor a Reduce's
//      root): wait until every arrived[q] >= seq - K + 1 (usually seen before), then copy the
//      input piece into the buffer and set its tag;
//   2. arrived[r] = seq;
//   3. wait until arrived[q] >= seq for every rank q whose buffer r reads (DirectCall), then
//      read: one_shot AllReduce reduces the whole piece from every buffer, in rank order, into
//      the output; two_shot reduces chunk r the same way, writes it into the output and into
//      this rank's buffer (chunk r of it is read by nobody else), sets reduced[r] = seq, then
//      copies every peer's finished chunk from its buffer as reduced[q] >= seq; the others
//      copy or reduce their piece of the staged inputs;
//   4. done[r] = seq (for stall reports).
// Every flag store is a release and every flag load an acquire; the flags only grow. Step 1 is
// what makes reusing buffer seq % K safe: a rank arrives for seq - K + 1 only after it finished
// reading everything of round seq - K, the buffer's last use. A rank may so be K - 1 rounds
// ahead of those that read it: a Broadcast's root, a Reduce's non-roots, and a rank whose
// staging nobody reads (it waits only for the rank it reads from). Four buffers instead of two
// took a small one_shot Broadcast on 4 processes of 2 CPUs from about 3 to about 2 us
// (docs/PERFORMANCE.md): fewer hand-overs of a CPU per call.
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
// The fast lane: a call outside a group on an idle communicator (Communicator::runNow) whose
// algorithm runs here reuses one DirectExecution (reset) and one PreparedUnit, driven by
// driveInPlace (driver.h): no allocation, no stream, no doorbell. It cut an 8-byte call on two
// processes from about 1.0 to about 0.55 us on the 2-CPU VM (docs/PERFORMANCE.md).
//
// Thread-safety: one driver thread per rank uses a window; the header words are atomics shared
// between processes.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "algorithms/schedule.h"
#include "base/status.h"
#include "bootstrap/bootstrap.h"
#include "runtime/executor.h"

namespace loom::runtime {

// Buffers per rank: round seq uses buffer seq % kWindowSlots, so a rank may run up to
// kWindowSlots - 1 rounds ahead of the slowest rank that reads it (a Broadcast's root, a
// Reduce's non-roots; docs/ALGORITHMS.md, "Four buffers per rank").
inline constexpr int kWindowSlots = 4;
// Inputs of at most this many bytes per round are staged beside the arrival flag (InlineSlot).
inline constexpr size_t kWindowInlineBytes = 16;

// What a rank stages per buffer beside its arrival: the staged call's tag, and inputs of at
// most kWindowInlineBytes, staged here instead of in the buffer, so that a
// peer that sees the arrival has tag and data in the same cache lines.
struct InlineSlot {
  uint64_t tag;
  std::byte data[kWindowInlineBytes];
};

struct alignas(64) WindowHeader {
  // Read by every peer each round: the round whose input is staged, with the tags and inline
  // inputs of buffers 0 and 1 in its cache line and those of 2 and 3 in the next (one or two
  // transfers between cores for an 8-byte call).
  alignas(128) std::atomic<uint64_t> arrived;
  InlineSlot firstSlots[2];
  alignas(64) InlineSlot lastSlots[kWindowSlots - 2];
  alignas(64) std::atomic<uint64_t> reduced;  // last round whose owned chunk is final (two_shot)
  alignas(64) std::atomic<uint64_t> done;     // last round finished (diagnostics only)
  alignas(64) std::atomic<uint32_t> epoch;    // bumped on every publish (the futex word)
  std::atomic<uint32_t> sleepers;             // ranks waiting on epoch
  alignas(64) std::atomic<uint32_t> gone;     // 1: this rank aborted or left
  int32_t pid;
  uint64_t pidNamespace;  // inode of /proc/self/ns/pid: pids compare only within one

  InlineSlot& slot(uint64_t seq) {
    const int s = static_cast<int>(seq % kWindowSlots);
    return s < 2 ? firstSlots[s] : lastSlots[s - 2];
  }
};

static_assert(
    offsetof(WindowHeader, lastSlots) == 64 && offsetof(WindowHeader, reduced) == 128,
    "the arrival line holds the flag and buffers 0 and 1's slots, the next line the rest");

class HostWindow {
 public:
  static constexpr size_t kInlineBytes = kWindowInlineBytes;
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
  // Where rank r stages round seq of a call of `bytes` per round: the arrival line's inline
  // area when it fits, else the buffer.
  std::byte* stage(int r, uint64_t seq, size_t bytes) const {
    return bytes <= kInlineBytes ? header(r).slot(seq).data : buffer(r, seq);
  }

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
  // The highest round every peer was seen to have arrived for (flags only grow, so it stays
  // true): a wait for it needs no look at the peers' flags.
  uint64_t allArrived() const { return allArrived_; }
  void noteAllArrived(uint64_t seq) {
    if (seq > allArrived_) allArrived_ = seq;
  }
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
  uint64_t allArrived_ = 0;
};

// One call of a one-shot collective through the window, as staged by every rank and read by
// the ranks that need it (docs/ALGORITHMS.md, "Direct collectives through the host window"):
//   AllReduce    one_shot: reduce every staged input; two_shot: chunk r, then gather chunks.
//   AllGather    stage the own block; copy every staged block into its place in the output.
//   ReduceScatter, AllToAll  stage a piece of every block of the input; reduce (copy) piece r
//                of every staged input.
//   Broadcast    the root stages; the others copy.
//   Reduce       every rank stages; the root reduces.
// Every rank stages (the root's staging is all that matters for Broadcast, but every rank's
// arrival is what makes reusing a buffer safe), in rounds of one piece of each block.
struct DirectCall {
  algo::Collective collective = algo::Collective::kAllReduce;
  bool twoShot = false;  // AllReduce only
  int root = 0;          // Broadcast, Reduce
  const void* input = nullptr;
  void* output = nullptr;  // null on a Reduce's non-root
  uint64_t count = 0;      // the call's count (per block for AllGather, ReduceScatter, AllToAll)
  uint64_t tag = 0;        // the transports' message tag of the call (mismatch detection)
};

// One call through the window, as an Execution the driver runs like any other: progress()
// never blocks.
class DirectExecution final : public Execution {
 public:
  DirectExecution(ExecParams params, HostWindow* window, const DirectCall& call);
  // Makes this execution the next call's (as if newly constructed, without allocating): the
  // host window's fast lane reuses one (Communicator::prepareInWindow).
  void reset(ExecParams params, const DirectCall& call);
  // The same call again under the next sequence number (seq, and its tag): the rounds restart,
  // the pieces and counts stay.
  void restart(uint64_t seq, uint64_t tag);

  Status progress(bool* progressed) override;
  bool done() const override { return round_ == rounds_; }
  std::string stallReport(const std::function<std::string(int)>& describePeer) const override;
  bool sleepsInPlace() const override { return true; }
  bool waitInPlace(int timeoutMs) override;

 private:
  enum class Phase { kStage, kWaitArrived, kGather };
  static constexpr int kAllRanks = -1;
  static constexpr int kNoRank = -2;
  // *ready when the flag of every peer (only == kAllRanks) or of rank `only` is >= value; else
  // notReady(the first that is not).
  Status waitFor(const std::atomic<uint64_t> WindowHeader::*flag, uint64_t value, bool* ready,
                 int only = kAllRanks);
  // Whose staged data this rank reads in a round: kAllRanks, one rank, or kNoRank.
  int readsFrom() const;
  // Whether any peer reads what this rank stages (not a Broadcast's non-root, nor a Reduce's
  // root): only then does it stage, and wait for its buffer to be free first.
  bool readByPeers() const;
  // Records peer q as the one waited for (waitInPlace sleeps on it) and checks that it lives.
  Status notReady(int q, const std::atomic<uint64_t> WindowHeader::*flag, uint64_t value);
  Status checkTags(uint64_t seq, int only) const;
  // Elements of one block in this round's piece, and where the piece starts in the block.
  void stage(uint64_t seq, uint64_t offset, uint64_t elems);
  // Everything after the arrival of every rank, for all but AllReduce.
  void readStaged(uint64_t seq, uint64_t offset, uint64_t elems);
  void reduceChunk(uint64_t pieceOffset, uint64_t chunkOffset, uint64_t chunkCount);
  // dst[0, count) = srcs_ (one per rank, in rank order) combined with the call's op.
  void combine(std::byte* dst, uint64_t count);
  void finishRound(bool* progressed);
  // Blocks a rank stages per round (n for ReduceScatter and AllToAll, else 1).
  int stagedBlocks() const;

  DirectCall call_;
  HostWindow* window_;
  bool twoShot_;
  const std::byte* input_;
  std::byte* output_;
  uint64_t count_;       // elements per block
  uint64_t pieceElems_;  // elements per round
  size_t stagedBytes_;   // bytes of the largest round (HostWindow::stage)
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
