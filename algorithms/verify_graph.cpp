// Verifier phase 2: one node per step, message matching, and the dataflow dependencies the
// executor honours (schedule.h, "Execution"): a step waits for every earlier step of its channel
// that touches an element it touches where either writes, zero-count steps are fences, and the
// messages of one connection keep their order.
#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "algorithms/verify_internal.h"
#include "base/assert.h"

namespace loom::algo::verify_detail {
namespace {

void createNodes(const Model& model, Graph* graph) {
  graph->firstNode.resize(model.ranks.size());
  for (const RankModel& rank : model.ranks) {
    const auto& channels = rank.canon.channels;
    for (int c = 0; c < static_cast<int>(channels.size()); ++c) {
      graph->firstNode[rank.rank].push_back(static_cast<uint32_t>(graph->nodes.size()));
      for (int i = 0; i < static_cast<int>(channels[c].steps.size()); ++i) {
        graph->nodes.push_back({rank.rank, c, i, kNoNode});
      }
    }
  }
  graph->deps.resize(graph->nodes.size());
}

struct Connection {
  std::vector<uint32_t> sends;
  std::vector<uint32_t> recvs;
};
using Key = std::tuple<int, int, int>;  // sender, receiver, channel

std::string connectionCounts(const Key& key, const Connection& connection) {
  const auto [sender, receiver, channel] = key;
  return "r" + std::to_string(sender) + " sends " + std::to_string(connection.sends.size()) +
         " messages to r" + std::to_string(receiver) + " on channel " + std::to_string(channel) +
         " and r" + std::to_string(receiver) + " posts " + std::to_string(connection.recvs.size()) +
         " receives from r" + std::to_string(sender) + " there";
}

Status pairConnection(const Model& model, const Key& key, const Connection& connection,
                      Graph* graph) {
  const size_t paired = std::min(connection.sends.size(), connection.recvs.size());
  for (size_t k = 0; k < paired; ++k) {
    const uint32_t s = connection.sends[k];
    const uint32_t r = connection.recvs[k];
    const uint64_t sent = canonStep(model, graph->nodes[s]).count();
    const uint64_t expected = canonStep(model, graph->nodes[r]).count();
    if (sent != expected) {
      return invalidArgument(whereIs(model, graph->nodes[s]) + " sends " + std::to_string(sent) +
                             " elements but its receive " + whereIs(model, graph->nodes[r]) +
                             " expects " + std::to_string(expected));
    }
    graph->nodes[s].partner = r;
    graph->nodes[r].partner = s;
  }
  if (connection.sends.size() > paired) {
    return invalidArgument(whereIs(model, graph->nodes[connection.sends[paired]]) +
                           " is never received: " + connectionCounts(key, connection));
  }
  if (connection.recvs.size() > paired) {
    return invalidArgument(whereIs(model, graph->nodes[connection.recvs[paired]]) +
                           " never gets its message: " + connectionCounts(key, connection));
  }
  return Status::ok();
}

Status matchMessages(const Model& model, Graph* graph) {
  std::map<Key, Connection> connections;
  for (uint32_t x = 0; x < graph->nodes.size(); ++x) {
    const Node& node = graph->nodes[x];
    const Step& step = canonStep(model, node);
    if (step.kind == StepKind::kSend) {
      connections[{node.rank, step.peer, node.channel}].sends.push_back(x);
    } else if (isMessage(step.kind)) {
      connections[{step.peer, node.rank, node.channel}].recvs.push_back(x);
    }
  }
  for (const auto& [key, connection] : connections) {
    LOOM_RETURN_IF_ERROR(pairConnection(model, key, connection, graph));
  }
  return Status::ok();
}

// Per-element history of one rank: the last writer and the readers since. Most elements have at
// most two readers between writes, so those are stored inline and the rest in an overflow list.
class HazardTracker {
 public:
  // mark is shared by every rank's tracker (node ids are global): mark[p] == x means p is
  // already a dependency of x.
  HazardTracker(const RankModel& rank, std::vector<uint32_t>* mark) : mark_(*mark) {
    for (int b = 0; b < kNumBuffers; ++b) {
      history_[b].resize(rank.storage[b]);
    }
  }

  // Adds p to x's dependencies once.
  void depend(uint32_t x, uint32_t p, Wait why, Graph* graph) {
    if (p == kNoNode || p == x || mark_[p] == x) return;
    mark_[p] = x;
    graph->deps[x].push_back({p, why});
  }

  void addOverlapDeps(uint32_t x, const RegionUse* uses, int n, Graph* graph) {
    for (int u = 0; u < n; ++u) {
      const Region& region = *uses[u].region;
      std::vector<History>& history = history_[bufferIndex(region.buffer)];
      for (uint64_t e = region.offset; e < region.end(); ++e) {
        const History& h = history[e];
        depend(x, h.writer, Wait::kOverlap, graph);
        if (!uses[u].writes) continue;
        depend(x, h.reader[0], Wait::kOverlap, graph);
        depend(x, h.reader[1], Wait::kOverlap, graph);
        if (h.more == kNoNode) continue;
        for (uint32_t reader : overflow_[h.more]) {
          depend(x, reader, Wait::kOverlap, graph);
        }
      }
    }
  }

  void record(uint32_t x, const RegionUse* uses, int n) {
    for (int u = 0; u < n; ++u) {  // reads come before the write in uses
      const Region& region = *uses[u].region;
      std::vector<History>& history = history_[bufferIndex(region.buffer)];
      for (uint64_t e = region.offset; e < region.end(); ++e) {
        if (uses[u].writes) {
          history[e] = History{x};
        } else {
          addReader(&history[e], x);
        }
      }
    }
  }

 private:
  struct History {
    uint32_t writer = kNoNode;
    uint32_t reader[2] = {kNoNode, kNoNode};
    uint32_t more = kNoNode;  // index into overflow_
  };

  void addReader(History* h, uint32_t x) {
    if (h->reader[0] == kNoNode) {
      h->reader[0] = x;
    } else if (h->reader[0] != x && h->reader[1] == kNoNode) {
      h->reader[1] = x;
    } else if (h->reader[0] != x && h->reader[1] != x) {
      if (h->more == kNoNode) {
        h->more = static_cast<uint32_t>(overflow_.size());
        overflow_.emplace_back();
      }
      std::vector<uint32_t>& more = overflow_[h->more];
      if (more.empty() || more.back() != x) more.push_back(x);
    }
  }

  std::vector<uint32_t>& mark_;
  std::vector<History> history_[kNumBuffers];
  std::vector<std::vector<uint32_t>> overflow_;
};

void addChannelDeps(const Model& model, int rank, int channel, HazardTracker* hazards,
                    Graph* graph) {
  const auto& steps = model.ranks[rank].canon.channels[channel].steps;
  const uint32_t first = graph->firstNode[rank][channel];
  uint32_t lastFence = kNoNode;
  std::vector<uint32_t> sinceFence;
  std::vector<uint32_t> lastSend(model.ranks.size(), kNoNode);
  std::vector<uint32_t> lastRecv(model.ranks.size(), kNoNode);
  for (uint32_t i = 0; i < steps.size(); ++i) {
    const uint32_t x = first + i;
    const Step& step = steps[i];
    const bool fence = step.count() == 0;
    hazards->depend(x, lastFence, Wait::kFence, graph);
    if (fence) {
      for (uint32_t p : sinceFence) {
        hazards->depend(x, p, Wait::kFence, graph);
      }
    }
    RegionUse uses[3];
    const int n = regionsOf(step, uses);
    hazards->addOverlapDeps(x, uses, n, graph);
    if (isMessage(step.kind)) {
      uint32_t& last = step.kind == StepKind::kSend ? lastSend[step.peer] : lastRecv[step.peer];
      hazards->depend(x, last, Wait::kConnection, graph);
      last = x;
    }
    hazards->record(x, uses, n);
    if (fence) {
      lastFence = x;
      sinceFence.clear();
    } else {
      sinceFence.push_back(x);
    }
  }
}

}  // namespace

Status buildGraph(const Model& model, Graph* graph) {
  createNodes(model, graph);
  LOOM_RETURN_IF_ERROR(matchMessages(model, graph));
  std::vector<uint32_t> mark(graph->nodes.size(), kNoNode);
  for (const RankModel& rank : model.ranks) {
    HazardTracker hazards(rank, &mark);
    for (int c = 0; c < static_cast<int>(rank.canon.channels.size()); ++c) {
      addChannelDeps(model, rank.rank, c, &hazards, graph);
    }
  }
  return Status::ok();
}

}  // namespace loom::algo::verify_detail
