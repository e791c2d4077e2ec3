// The schedule IR (DESIGN.md section 3): how a collective is done, as plain data.
//
// An algorithm is a pure function (CollectiveArgs, rank) -> RankSchedule. A RankSchedule is,
// per channel (an independent lane), an ordered list of Steps. Because it is data, a schedule
// can be verified symbolically (verify.h), simulated, printed, and run by the executor.
//
// Vocabulary
//   element  - one value of the collective's datatype; all offsets and counts are in elements.
//   buffer   - kInput (the user's send buffer), kOutput (the user's receive buffer) or
//              kScratch (temporary memory the executor provides, scratchCount elements).
//   region   - (buffer, offset, count): a contiguous run of elements in one buffer.
//   step     - one action of this rank: send a region to a peer, receive into a region,
//              receive-and-reduce, local copy or local reduce.
//   channel  - a sequence of steps executed in order. Channels of one rank run concurrently and
//              must touch disjoint elements (the verifier checks it). Channel c of rank a talks
//              only to channel c of its peers.
//
// Matching: the k-th Send from rank a to rank b on channel c is received by the k-th Recv or
// RecvReduce posted by b for peer a on channel c; their counts must be equal.
//
// Execution (runtime/executor): the executor cuts every step into slices and runs a step's
// slice as soon as every earlier step of the channel has finished the elements it overlaps
// (read-after-write, write-after-read and write-after-write on the same buffer elements), so a
// ring's receive-reduce-forward pipelines automatically. Algorithms therefore describe WHAT
// moves in which order and never slice or pipeline themselves.
//
// In place: when args.inPlace, the user's buffers alias in the layout the API defines (see
// aliasOf()). Algorithms are told, must produce a schedule that is correct under that aliasing,
// and the planner then rewrites regions onto the one underlying buffer (canonicalizeInPlace),
// so both the executor's hazard tracking and the verifier see the aliasing explicitly.
//
// Avg: a reduction's last combining step for an output element carries finalize = true; the
// executor then divides by nranks there (Avg) and nowhere else. Every output element of a
// reducing collective must be finalized exactly once, before it is copied or forwarded, and only
// once it holds every rank's contribution. A finalized value is never combined again.
//
// One rank: a reduction over one rank is a Copy(input -> output, finalize = true). In place that
// Copy canonicalizes to a self copy (src == dst): it moves nothing and only finalizes. This is
// the one legal self copy (a Copy with src == dst and finalize = false is rejected by the
// verifier), so the executor must not memcpy it, only apply finalize. Thus every output element
// of every reduction is finalized by exactly one step, for every nranks, with no special case.
//
// Overlap: within one step, the regions a Copy, Reduce or RecvReduce reads and writes are either
// identical or disjoint (after canonicalizeInPlace); partial overlap is rejected.
//
// Zero-count steps: a step whose count is 0 touches no memory; it is a synchronization point
// (e.g. a barrier's messages). The executor orders it after every earlier step of its channel
// and every later step of the channel after it (a fence), and its message is still sent and
// matched. A zero-count message needs no buffer space, so transports deliver it eagerly: its send
// completes without waiting for the receive (a barrier's "send, then receive" relies on it).
// Algorithms therefore skip zero-count transfers that carry no meaning (an empty ring chunk) rather
// than emitting fences. A region of count 0 may name any buffer at an offset no greater than the
// buffer's size, even one the rank does not have.
//
// Dependencies between ranks are only the messages: the verifier proves that a schedule
// completes even when no transport buffers anything (a send completes only as its receive
// does), so schedules never rely on the transport's buffering (verify.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "algorithms/host_layout.h"
#include "base/status.h"

namespace loom::algo {

// Values match loomCollective_t.
enum class Collective : int {
  kAllReduce = 0,
  kBroadcast = 1,
  kReduce = 2,
  kAllGather = 3,
  kReduceScatter = 4,
  kAllToAll = 5,
  kGather = 6,
  kScatter = 7,
  kSend = 8,
  kRecv = 9,
  kBarrier = 10,
};
inline constexpr int kNumCollectives = 11;

const char* collectiveName(Collective c);  // "allreduce", "broadcast", …
// True for collectives that combine values with a reduction operator.
bool isReduction(Collective c);

enum class BufferId : uint8_t { kInput = 0, kOutput = 1, kScratch = 2 };
const char* bufferName(BufferId b);

struct Region {
  BufferId buffer = BufferId::kInput;
  uint64_t offset = 0;
  uint64_t count = 0;
  uint64_t end() const { return offset + count; }
  bool operator==(const Region&) const = default;
};

enum class StepKind : uint8_t {
  kSend,        // send src to peer
  kRecv,        // receive from peer into dst
  kRecvReduce,  // dst = src (op) incoming; src may equal dst
  kCopy,        // dst = src (local)
  kReduce,      // dst = src (op) src2 (local); either source may equal dst
};
const char* stepKindName(StepKind k);

struct Step {
  StepKind kind = StepKind::kSend;
  int32_t peer = -1;      // kSend, kRecv, kRecvReduce
  Region src{};           // kSend, kRecvReduce, kCopy, kReduce
  Region src2{};          // kReduce
  Region dst{};           // kRecv, kRecvReduce, kCopy, kReduce
  bool finalize = false;  // see header comment (Avg)

  uint64_t count() const;  // elements moved/combined by this step
  bool operator==(const Step&) const = default;

  static Step send(int peer, Region src);
  static Step recv(int peer, Region dst);
  static Step recvReduce(int peer, Region src, Region dst, bool finalize = false);
  static Step copy(Region src, Region dst, bool finalize = false);
  static Step reduce(Region src, Region src2, Region dst, bool finalize = false);
};

struct Channel {
  std::vector<Step> steps;
};

struct RankSchedule {
  std::vector<Channel> channels;
  uint64_t scratchCount = 0;  // elements of kScratch this rank needs
};

// What an algorithm is asked to build. count follows the API of each collective:
//   AllReduce, Broadcast, Reduce: elements per buffer.
//   AllGather, Gather: elements each rank contributes (output holds nranks*count).
//   ReduceScatter, Scatter: elements each rank receives (input holds nranks*count).
//   AllToAll: elements per (source, destination) pair (both buffers hold nranks*count).
//   Send, Recv: elements; peer is the other rank.  Barrier: count is 0.
struct CollectiveArgs {
  Collective collective = Collective::kAllReduce;
  uint64_t count = 0;
  int nranks = 1;
  int root = 0;   // Broadcast, Reduce, Gather, Scatter
  int peer = -1;  // Send, Recv
  bool inPlace = false;
  int nchannels = 1;  // channels the algorithm may use (it may use fewer)
  // Which host each rank is on (host_layout.h); empty: one host. Only hierarchical algorithms
  // read it; when set, its nranks() equals nranks.
  HostLayout hosts{};
  // Bytes per buffer of the host window (runtime/direct.h) when every rank is a process of one
  // host and the window is on; 0 otherwise. The direct AllReduce algorithms (one_shot,
  // two_shot) then run through it, and the cost model prices them so (runsInWindow).
  uint64_t windowBytes = 0;
};

// Elements in each user buffer of `rank` for these arguments (0 where the API says the buffer
// is not used, e.g. a non-root's output in Reduce).
uint64_t inputCount(const CollectiveArgs& args, int rank);
uint64_t outputCount(const CollectiveArgs& args, int rank);

// The in-place layout the API defines: when args.inPlace, `aliased` of `rank` is the region
// [offset, offset + its count) of `base`. Returns false when nothing aliases for this rank.
struct Alias {
  BufferId aliased;
  BufferId base;
  uint64_t offset;
};
bool aliasOf(const CollectiveArgs& args, int rank, Alias* alias);

// Rewrites every region of the aliased buffer onto the base buffer (no-op out of place).
void canonicalizeInPlace(const CollectiveArgs& args, int rank, RankSchedule* schedule);

// Splits [0, total) into `parts` near-equal chunks, the first (total % parts) one larger:
// chunk i is [chunkOffset(total, parts, i), + chunkCount(total, parts, i)).
uint64_t chunkOffset(uint64_t total, int parts, int index);
uint64_t chunkCount(uint64_t total, int parts, int index);

// The schedule of every rank (verifier, simulator, loom-sim --explain).
struct Schedule {
  CollectiveArgs args;
  std::string algorithm;
  std::vector<RankSchedule> ranks;
};

// Human-readable listing, one step per line ("r0 c0   0: send       -> r1  in[0+4]").
std::string describe(const RankSchedule& schedule, int rank);
// One region ("in[0+4]": buffer[offset+count]) and one step, as describe() prints them.
std::string describeRegion(const Region& region);
std::string describeStep(const Step& step);

}  // namespace loom::algo
