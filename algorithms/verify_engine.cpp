// Verifier phase 3: run the step graph under a progress model (Kahn's algorithm), and when it
// cannot finish, explain the deadlock as the cycle of steps that wait on one another.
//
// Progress models (verify_internal.h):
//   in order, buffered      a step waits for the previous step of its channel; a receive for
//                           its message; sends complete at once.
//   dataflow, buffered      a step waits for its dependencies (overlap, fence, connection order);
//                           a receive for its message. This is the executor's rule.
//   dataflow, unbuffered    as above, but a send and its receive complete together, so the pair
//                           waits for the dependencies of both (zero-count messages excepted:
//                           they need no buffer space and are always delivered eagerly).
#include <algorithm>
#include <string>
#include <vector>

#include "algorithms/verify_internal.h"
#include "base/assert.h"

namespace loom::algo::verify_detail {
namespace {

const char* reasonText(Wait why) {
  switch (why) {
    case Wait::kChannelOrder:
      return "the previous step: channels run in order";
    case Wait::kOverlap:
      return "an earlier step touching the same elements";
    case Wait::kFence:
      return "a zero-count step orders its channel";
    case Wait::kConnection:
      return "an earlier message on the same connection";
    case Wait::kMessage:
      return "its message";
  }
  return "?";
}

const char* modeText(Progress progress) {
  switch (progress) {
    case Progress::kInOrderBuffered:
      return " when each channel runs its steps strictly in order";
    case Progress::kDataflowBuffered:
      return "";
    case Progress::kDataflowUnbuffered:
      return " when the transport buffers nothing (a send completes only when its receive does)";
  }
  return "";
}

class Runner {
 public:
  Runner(const Model& model, const Graph& graph, Progress progress)
      : model_(model), graph_(graph), progress_(progress) {}

  Status run(const FireFn& fire) {
    const uint32_t total = static_cast<uint32_t>(graph_.nodes.size());
    std::vector<std::vector<uint32_t>> successors(total);
    std::vector<uint32_t> waiting(total, 0);
    std::vector<Pred> preds;
    for (uint32_t x = 0; x < total; ++x) {
      predsOf(x, &preds);
      for (const Pred& p : preds) {
        const uint32_t from = rep(p.node), to = rep(x);
        if (from == to) continue;
        successors[from].push_back(to);
        ++waiting[to];
      }
    }
    fired_.assign(total, false);
    std::vector<uint32_t> ready;
    for (uint32_t x = total; x-- > 0;) {
      if (rep(x) == x && waiting[x] == 0) ready.push_back(x);
    }
    uint32_t count = 0;
    while (!ready.empty()) {
      const uint32_t x = ready.back();
      ready.pop_back();
      for (uint32_t member : members(x)) {
        if (fire) LOOM_RETURN_IF_ERROR(fire(member));
        fired_[member] = true;
        ++count;
      }
      for (uint32_t next : successors[x]) {
        if (--waiting[next] == 0) ready.push_back(next);
      }
    }
    if (count < total) return deadlock(total - count);
    return Status::ok();
  }

 private:
  // Unbuffered, a send and its receive complete together, except a zero-count message: it
  // needs no buffer space, so every transport delivers it eagerly (schedule.h).
  bool paired(uint32_t x) const {
    return progress_ == Progress::kDataflowUnbuffered && graph_.nodes[x].partner != kNoNode &&
           canonStep(model_, graph_.nodes[x]).count() > 0;
  }
  // The graph node standing for x: a send/receive pair is one node when nothing is buffered.
  uint32_t rep(uint32_t x) const { return paired(x) ? std::min(x, graph_.nodes[x].partner) : x; }
  // The steps a representative stands for, a send before its receive.
  std::vector<uint32_t> members(uint32_t x) const {
    if (!paired(x)) return {x};
    const uint32_t partner = graph_.nodes[x].partner;
    const bool isSend = canonStep(model_, graph_.nodes[x]).kind == StepKind::kSend;
    return isSend ? std::vector<uint32_t>{x, partner} : std::vector<uint32_t>{partner, x};
  }

  void predsOf(uint32_t x, std::vector<Pred>* out) const {
    out->clear();
    const Node& node = graph_.nodes[x];
    if (progress_ == Progress::kInOrderBuffered) {
      if (node.index > 0) out->push_back({x - 1, Wait::kChannelOrder});
    } else {
      *out = graph_.deps[x];
    }
    const bool receives = canonStep(model_, node).kind != StepKind::kSend;
    if (receives && node.partner != kNoNode && !paired(x)) {
      out->push_back({node.partner, Wait::kMessage});
    }
  }

  struct Hop {
    uint32_t waiter;  // the step that waits
    Pred on;          // what it waits for
  };

  // From an unfired representative, a hop to an unfired predecessor (one always exists).
  Hop hopFrom(uint32_t x) const {
    std::vector<Pred> preds;
    for (uint32_t member : members(x)) {
      predsOf(member, &preds);
      for (const Pred& p : preds) {
        if (!fired_[p.node] && rep(p.node) != x) return {member, p};
      }
    }
    LOOM_CHECK(false, "an unfired step has no unfired predecessor");
    return {x, {x, Wait::kOverlap}};
  }

  std::vector<Hop> findCycle() const {
    uint32_t start = 0;
    while (fired_[start]) {
      ++start;
    }
    std::vector<int> seenAt(graph_.nodes.size(), -1);
    std::vector<Hop> path;
    for (uint32_t x = rep(start); seenAt[x] < 0; x = rep(path.back().on.node)) {
      seenAt[x] = static_cast<int>(path.size());
      path.push_back(hopFrom(x));
    }
    const uint32_t again = rep(path.back().on.node);
    return std::vector<Hop>(path.begin() + seenAt[again], path.end());
  }

  std::string where(uint32_t x) const { return whereIs(model_, graph_.nodes[x]); }

  std::string describeCycle(const std::vector<Hop>& cycle) const {
    std::string text;
    for (size_t h = 0; h < cycle.size(); ++h) {
      const Hop& hop = cycle[h];
      text += "\n  " + where(hop.waiter) + " waits for " + where(hop.on.node) + " (" +
              reasonText(hop.on.why) + ")";
      const uint32_t nextWaiter = cycle[(h + 1) % cycle.size()].waiter;
      if (nextWaiter != hop.on.node) {
        text += ";\n  " + where(hop.on.node) + " completes only together with " + where(nextWaiter);
      }
    }
    return text;
  }

  std::string describeStuck() const {
    std::string text;
    int listed = 0, more = 0;
    for (const auto& channels : graph_.firstNode) {
      for (uint32_t first : channels) {
        const Node& head = graph_.nodes[first];
        const auto& steps = model_.ranks[head.rank].canon.channels[head.channel].steps;
        for (uint32_t i = 0; i < steps.size(); ++i) {
          if (fired_[first + i]) continue;
          if (listed++ < 8) {
            text += (listed > 1 ? ", r" : "r") + std::to_string(head.rank) + " c" +
                    std::to_string(head.channel) + " at step " + std::to_string(i);
          } else {
            ++more;
          }
          break;
        }
      }
    }
    if (more > 0) text += " and " + std::to_string(more) + " more channels";
    return text;
  }

  Status deadlock(uint32_t unfired) const {
    return invalidArgument("deadlock" + std::string(modeText(progress_)) + ": " +
                           std::to_string(unfired) + " of " + std::to_string(graph_.nodes.size()) +
                           " steps never run. Stuck: " + describeStuck() +
                           ". Waiting cycle:" + describeCycle(findCycle()));
  }

  const Model& model_;
  const Graph& graph_;
  Progress progress_;
  std::vector<bool> fired_;
};

}  // namespace

Status runGraph(const Model& model, const Graph& graph, Progress progress, const FireFn& fire) {
  return Runner(model, graph, progress).run(fire);
}

}  // namespace loom::algo::verify_detail
