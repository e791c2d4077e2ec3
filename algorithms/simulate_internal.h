// The simulator's step graph (internal to simulate*.cpp): every step of every rank, with the
// earlier steps of its channel it waits for and the step its message meets.
#pragma once

#include <cstdint>
#include <vector>

#include "algorithms/schedule.h"
#include "algorithms/simulate.h"
#include "base/status.h"

namespace loom::algo::sim {

struct Node {
  int rank = 0;
  int channel = 0;
  int index = 0;  // within its channel
  StepKind kind = StepKind::kSend;
  int peer = -1;
  uint64_t count = 0;  // elements
  int slices = 1;
  int match = -1;      // Send/Recv/RecvReduce: the node of the other side
  bool fence = false;  // count 0: orders every earlier and later step of its channel
  Region reads[2];
  int nreads = 0;
  Region write;
  bool writes = false;
  uint32_t depBegin = 0, depEnd = 0;  // into Graph::deps
};

struct Graph {
  std::vector<Node> nodes;         // in (rank, channel, index) order
  std::vector<int> deps;           // per node [depBegin, depEnd): earlier nodes it waits for
  std::vector<uint32_t> revBegin;  // CSR of the reverse edges: nodes that wait for node i
  std::vector<int> rev;
};

// Builds the graph of a whole schedule: hazards within each channel, messages matched in order
// per (channel, sender, receiver). InvalidArgument names the first unmatched message.
Status buildGraph(const Schedule& schedule, const SimOptions& options, Graph* graph);

// Slices of a step of `count` elements.
int slicesFor(uint64_t count, uint64_t elementBytes, uint64_t sliceBytes, int maxSlices);

// How many slices of node j must be done before slice k of node i may start (0: none).
int slicesNeeded(const Node& i, int k, const Node& j);

// Whether two regions share an element.
inline bool overlaps(const Region& a, const Region& b) {
  return a.buffer == b.buffer && a.count > 0 && b.count > 0 && a.offset < b.end() &&
         b.offset < a.end();
}

// Whether step b (later) must wait for step a (earlier) of the same channel.
bool conflicts(const Step& a, const Step& b);

}  // namespace loom::algo::sim
