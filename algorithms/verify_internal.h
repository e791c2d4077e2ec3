// The verifier's internal pieces (verify.h has the contract). The phases, in order:
//   verify.cpp         builds the Model (per-rank args, raw and canonical schedules, sizes)
//   verify_static.cpp  per-step rules and channel disjointness
//   verify_graph.cpp   one node per step, message matching, dataflow dependencies
//   verify_engine.cpp  runs the graph under a progress model; explains deadlocks
//   verify_values.cpp  the symbolic data run, the output check and the barrier check
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "algorithms/schedule.h"
#include "base/status.h"

namespace loom::algo::verify_detail {

inline constexpr int kNumBuffers = 3;
inline constexpr uint32_t kNoNode = UINT32_MAX;

inline int bufferIndex(BufferId b) {
  return static_cast<int>(b);
}

// One rank's part of the problem.
struct RankModel {
  int rank = 0;
  bool active = false;  // false: takes no part (point-to-point only)
  CollectiveArgs args;  // this rank's call
  const RankSchedule* raw = nullptr;
  RankSchedule canon;                         // raw with canonicalizeInPlace applied
  uint64_t logical[kNumBuffers] = {0, 0, 0};  // the API's sizes (scratch: scratchCount)
  uint64_t storage[kNumBuffers] = {0, 0, 0};  // canonical storage (an aliased buffer has none)
  bool aliased = false;
  Alias alias{BufferId::kInput, BufferId::kOutput, 0};
};

struct Model {
  std::string label;  // "allreduce:ring nranks 4 count 7 in place" for messages
  int nranks = 0;
  std::vector<RankModel> ranks;
};

// The regions a step touches, its reads first and then its write ("src", "src2", "dst").
struct RegionUse {
  const Region* region;
  bool writes;
  const char* role;
};
inline int regionsOf(const Step& step, RegionUse uses[3]) {
  switch (step.kind) {
    case StepKind::kSend:
      uses[0] = {&step.src, false, "src"};
      return 1;
    case StepKind::kRecv:
      uses[0] = {&step.dst, true, "dst"};
      return 1;
    case StepKind::kRecvReduce:
    case StepKind::kCopy:
      uses[0] = {&step.src, false, "src"};
      uses[1] = {&step.dst, true, "dst"};
      return 2;
    case StepKind::kReduce:
      uses[0] = {&step.src, false, "src"};
      uses[1] = {&step.src2, false, "src2"};
      uses[2] = {&step.dst, true, "dst"};
      return 3;
  }
  return 0;
}

inline bool isMessage(StepKind k) {
  return k == StepKind::kSend || k == StepKind::kRecv || k == StepKind::kRecvReduce;
}

// Whether the API gives `rank` buffer b at all (a non-root's output in Reduce: no).
bool hasBuffer(const RankModel& rank, BufferId b);

// One step of one rank's channel.
struct Node {
  int32_t rank = 0;
  int32_t channel = 0;
  int32_t index = 0;
  uint32_t partner = kNoNode;  // the matched receive of a send, or send of a receive
};

// Why a step waits for an earlier one.
enum class Wait : uint8_t {
  kChannelOrder,  // in-order progress: the previous step of the channel
  kOverlap,       // both touch an element and at least one writes it
  kFence,         // a zero-count step orders everything around it
  kConnection,    // an earlier message on the same (peer, channel, direction)
  kMessage,       // a receive waits for its message
};

struct Pred {
  uint32_t node;
  Wait why;
};

struct Graph {
  std::vector<Node> nodes;
  std::vector<std::vector<uint32_t>> firstNode;  // [rank][channel] -> id of its step 0
  std::vector<std::vector<Pred>> deps;           // dataflow predecessors (no kMessage)
};

// "r2 c0 step 3 (recvreduce <- r1  in[4+4] -> out[4+4])", from the raw (as written) step.
std::string whereIs(const Model& model, int rank, int channel, int index);
std::string whereIs(const Model& model, const Node& node);
const Step& rawStep(const Model& model, const Node& node);
const Step& canonStep(const Model& model, const Node& node);
// "out[5]": an element of a canonical buffer.
std::string elementName(BufferId buffer, uint64_t index);

// Phases; each returns InvalidArgument with the problem (without the model's label).
Status checkSteps(const Model& model);
Status checkChannelsDisjoint(const Model& model);
Status buildGraph(const Model& model, Graph* graph);

enum class Progress { kInOrderBuffered, kDataflowBuffered, kDataflowUnbuffered };
// Fires every node in an order the progress model allows, calling fire (if set) for each; a
// buffered send fires before its receive. A fire error stops the run. A deadlock is an error
// naming the cycle of waiting steps.
using FireFn = std::function<Status(uint32_t node)>;
Status runGraph(const Model& model, const Graph& graph, Progress progress, const FireFn& fire);

// The symbolic data run (dataflow, buffered), then the output check and, for Barrier, the
// happens-before check.
Status checkValues(const Model& model, const Graph& graph);

}  // namespace loom::algo::verify_detail
