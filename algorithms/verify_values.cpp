// Verifier phase 4: the symbolic data run, the output check and the barrier check.
//
// A Value is "input element `index`, combined over the ranks of `set`", possibly finalized; a
// value moved without combining keeps a one-rank set (its origin). Set 0 (empty) means the
// element was never written. Values flow through buffers and messages exactly as the executor
// moves data, so the final outputs can be compared with the collective's definition.
//
// A Value also records the order of its combines (Expressions): floating-point operations are
// not associative, and Max/Min return one operand on ties (+0 vs -0, NaN payloads), so only the
// same tree with the same operand order (the executor computes src (op) incoming, src (op) src2)
// gives the same bits. AllReduce must give every rank the same bits: the output check requires
// every rank's out[j] to carry the same expression.
#include <array>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "algorithms/verify_internal.h"
#include "algorithms/verify_sets.h"
#include "base/assert.h"

namespace loom::algo::verify_detail {
namespace {

struct Value {
  uint64_t index = 0;
  uint32_t set = RankSets::kEmpty;
  bool finalized = false;
  uint32_t expr = 0;  // Expressions id; not part of what the collective defines
  bool sameContent(const Value& o) const {
    return index == o.index && set == o.set && finalized == o.finalized;
  }
};

// Interned ordered combination trees: id 1 + r is rank r's input, and each distinct (left,
// right) pair of ids gets the next id. Thread-safety: none; one per verifier run.
class Expressions {
 public:
  explicit Expressions(int nranks) : nranks_(static_cast<uint32_t>(nranks)) {}
  uint32_t leaf(int rank) const { return 1 + static_cast<uint32_t>(rank); }
  uint32_t combine(uint32_t left, uint32_t right) {
    const uint64_t key = (uint64_t{left} << 32) | right;
    if (key == lastKey_) return last_;
    const uint32_t next = 1 + nranks_ + static_cast<uint32_t>(pairs_.size());
    const auto [it, inserted] = ids_.try_emplace(key, next);
    if (inserted) pairs_.push_back({left, right});
    lastKey_ = key;
    last_ = it->second;
    return last_;
  }
  // "((r0 r1) r2)", cut at about 200 characters.
  std::string describe(uint32_t e) const {
    std::string out;
    append(e, &out);
    return out;
  }

 private:
  void append(uint32_t e, std::string* out) const {
    if (out->size() > 200) {
      if (out->back() != '.') *out += "...";
      return;
    }
    if (e == 0 || e <= nranks_) {
      *out += e == 0 ? "?" : "r" + std::to_string(e - 1);
      return;
    }
    const auto& [left, right] = pairs_[e - 1 - nranks_];
    *out += "(";
    append(left, out);
    *out += " ";
    append(right, out);
    *out += ")";
  }

  uint32_t nranks_;
  std::vector<std::pair<uint32_t, uint32_t>> pairs_;
  std::unordered_map<uint64_t, uint32_t> ids_;
  uint64_t lastKey_ = UINT64_MAX;
  uint32_t last_ = 0;
};

class SymbolicRun {
 public:
  SymbolicRun(const Model& model, const Graph& graph)
      : model_(model),
        graph_(graph),
        sets_(model.nranks),
        exprs_(model.nranks),
        memory_(model.ranks.size()),
        payload_(graph.nodes.size()) {
    for (const RankModel& rank : model.ranks) {
      initMemory(rank);
    }
    barrier_ = !model.ranks.empty() && model.ranks[0].args.collective == Collective::kBarrier;
    if (barrier_) clocks_.assign(graph.nodes.size() * sets_.words(), 0);
  }

  Status fire(uint32_t x) {
    const Node& node = graph_.nodes[x];
    const Step& step = canonStep(model_, node);
    if (barrier_) tick(x);
    switch (step.kind) {
      case StepKind::kSend:
        return send(x, node, step);
      case StepKind::kRecv:
        return receive(x, node, step);
      default:
        return combineOrCopy(node, step);
    }
  }

  Status checkOutputs();
  Status checkSameOrder();
  Status checkBarrier();

 private:
  using Buffers = std::array<std::vector<Value>, kNumBuffers>;

  void initMemory(const RankModel& rank) {
    Buffers& memory = memory_[rank.rank];
    for (int b = 0; b < kNumBuffers; ++b) {
      memory[b].assign(rank.storage[b], Value{});
    }
    const uint64_t inputs = rank.logical[bufferIndex(BufferId::kInput)];
    uint64_t at = 0;
    std::vector<Value>* input = &memory[bufferIndex(BufferId::kInput)];
    if (rank.aliased && rank.alias.aliased == BufferId::kInput) {
      input = &memory[bufferIndex(rank.alias.base)];
      at = rank.alias.offset;
    }
    const uint32_t own = sets_.single(rank.rank);
    for (uint64_t i = 0; i < inputs; ++i) {
      (*input)[at + i] = {i, own, false, exprs_.leaf(rank.rank)};
    }
  }

  Value& at(int rank, BufferId buffer, uint64_t e) { return memory_[rank][bufferIndex(buffer)][e]; }

  std::string describe(const Value& v) const {
    if (v.set == RankSets::kEmpty) return "nothing (never written)";
    return "in[" + std::to_string(v.index) + "] of " + sets_.describe(v.set) +
           (v.finalized ? ", finalized" : "");
  }

  Status failAt(const Node& node, BufferId buffer, uint64_t e, const std::string& what) const {
    return invalidArgument(whereIs(model_, node) + ": at " + elementName(buffer, e) + ": " + what);
  }

  Status send(uint32_t x, const Node& node, const Step& step) {
    std::vector<Value>& message = payload_[x];
    message.resize(step.src.count);
    for (uint64_t e = 0; e < step.src.count; ++e) {
      const Value& v = at(node.rank, step.src.buffer, step.src.offset + e);
      if (v.set == RankSets::kEmpty) {
        return failAt(node, step.src.buffer, step.src.offset + e,
                      "sends an element nothing has written");
      }
      message[e] = v;
    }
    return Status::ok();
  }

  Status receive(uint32_t x, const Node& node, const Step& step) {
    std::vector<Value> message = std::move(payload_[graph_.nodes[x].partner]);
    for (uint64_t e = 0; e < step.dst.count; ++e) {
      at(node.rank, step.dst.buffer, step.dst.offset + e) = message[e];
    }
    return Status::ok();
  }

  // Checks that b may be combined into a (or, with b == nullptr, finalized by a copy).
  std::string combineProblem(const Value& a, const Value* b, bool finalize, Value* out) {
    // Only the error paths build text: this runs once per element.
    auto operands = [&] { return b ? describe(a) + " with " + describe(*b) : describe(a); };
    if (a.set == RankSets::kEmpty || (b && b->set == RankSets::kEmpty)) {
      return "reads an element nothing has written (" + operands() + ")";
    }
    if (a.finalized || (b && b->finalized)) {
      return b ? "combines " + operands() + ": a finalized value must not be combined again"
               : "finalizes " + describe(a) + " a second time";
    }
    *out = a;
    if (b) {
      if (a.index != b->index) return "combines different elements: " + operands();
      if (!sets_.disjoint(a.set, b->set)) {
        return "double counts rank " + std::to_string(sets_.firstCommon(a.set, b->set)) +
               ": combines " + operands();
      }
      out->set = sets_.unite(a.set, b->set);
      out->expr = exprs_.combine(a.expr, b->expr);
    }
    if (finalize && !sets_.isAll(out->set)) {
      return "finalizes in[" + std::to_string(out->index) + "] of " + sets_.describe(out->set) +
             ", which lacks " + sets_.describe(sets_.missingFrom(out->set)) +
             ": finalize (where Avg divides by nranks) needs every rank's contribution";
    }
    out->finalized = finalize;
    return "";
  }

  Status combineOrCopy(const Node& node, const Step& step) {
    std::vector<Value> incoming;
    if (step.kind == StepKind::kRecvReduce) incoming = std::move(payload_[node.partner]);
    for (uint64_t e = 0; e < step.dst.count; ++e) {
      const Value a = at(node.rank, step.src.buffer, step.src.offset + e);
      Value b;
      if (step.kind == StepKind::kRecvReduce) b = incoming[e];
      if (step.kind == StepKind::kReduce) b = at(node.rank, step.src2.buffer, step.src2.offset + e);
      Value result = a;
      std::string problem;
      if (step.kind != StepKind::kCopy) {
        problem = combineProblem(a, &b, step.finalize, &result);
      } else if (a.set == RankSets::kEmpty) {
        problem = "copies an element nothing has written";
      } else if (step.finalize) {
        problem = combineProblem(a, nullptr, true, &result);
      }
      if (!problem.empty()) return failAt(node, step.dst.buffer, step.dst.offset + e, problem);
      at(node.rank, step.dst.buffer, step.dst.offset + e) = result;
    }
    return Status::ok();
  }

  // Vector clocks (Barrier only): a step knows of its rank's start, of everything its
  // dependencies know and, for a receive, of everything its message's send knew.
  uint64_t* clock(uint32_t x) { return &clocks_[static_cast<size_t>(x) * sets_.words()]; }
  void merge(uint32_t into, uint32_t from) {
    for (int w = 0; w < sets_.words(); ++w) {
      clock(into)[w] |= clock(from)[w];
    }
  }
  void tick(uint32_t x) {
    const Node& node = graph_.nodes[x];
    clock(x)[node.rank / 64] |= uint64_t{1} << (node.rank % 64);
    for (const Pred& p : graph_.deps[x]) {
      merge(x, p.node);
    }
    if (canonStep(model_, node).kind != StepKind::kSend && node.partner != kNoNode) {
      merge(x, node.partner);
    }
  }

  Value expected(const RankModel& rank, uint64_t j);
  uint64_t outputLocation(const RankModel& rank, uint64_t j, BufferId* buffer) const;

  const Model& model_;
  const Graph& graph_;
  RankSets sets_;
  Expressions exprs_;
  std::vector<Buffers> memory_;
  std::vector<std::vector<Value>> payload_;  // by send node, until received
  bool barrier_ = false;
  std::vector<uint64_t> clocks_;
};

Value SymbolicRun::expected(const RankModel& rank, uint64_t j) {
  const CollectiveArgs& a = rank.args;
  const uint64_t c = a.count;
  const uint64_t r = static_cast<uint64_t>(rank.rank);
  switch (a.collective) {
    case Collective::kAllReduce:
    case Collective::kReduce:
      return {j, sets_.all(), true};
    case Collective::kReduceScatter:
      return {r * c + j, sets_.all(), true};
    case Collective::kAllGather:
    case Collective::kGather:
      return {j % c, sets_.single(static_cast<int>(j / c)), false};
    case Collective::kBroadcast:
      return {j, sets_.single(a.root), false};
    case Collective::kAllToAll:
      return {r * c + j % c, sets_.single(static_cast<int>(j / c)), false};
    case Collective::kScatter:
      return {r * c + j, sets_.single(a.root), false};
    case Collective::kRecv:
      return {j, sets_.single(a.peer), false};
    case Collective::kSend:
    case Collective::kBarrier:
      break;
  }
  LOOM_CHECK(false, "no output expected");
  return {};
}

uint64_t SymbolicRun::outputLocation(const RankModel& rank, uint64_t j, BufferId* buffer) const {
  if (rank.aliased && rank.alias.aliased == BufferId::kOutput) {
    *buffer = rank.alias.base;
    return rank.alias.offset + j;
  }
  *buffer = BufferId::kOutput;
  return j;
}

Status SymbolicRun::checkOutputs() {
  std::string report;
  uint64_t wrong = 0;
  int wrongRanks = 0;
  for (const RankModel& rank : model_.ranks) {
    const uint64_t outputs = rank.logical[bufferIndex(BufferId::kOutput)];
    bool reported = false;
    for (uint64_t j = 0; j < outputs; ++j) {
      BufferId buffer;
      const uint64_t e = outputLocation(rank, j, &buffer);
      const Value want = expected(rank, j);
      const Value seen = at(rank.rank, buffer, e);
      if (seen.sameContent(want)) continue;
      ++wrong;
      if (reported) continue;
      reported = true;
      if (++wrongRanks > 3) continue;
      report += (report.empty() ? "" : "; ") + std::string("r") + std::to_string(rank.rank) + " " +
                elementName(BufferId::kOutput, j) + ": expected " + describe(want) + ", seen " +
                describe(seen);
      Value finalizedSeen = seen;
      finalizedSeen.finalized = true;
      if (want.finalized && finalizedSeen.sameContent(want)) report += " (missing finalize)";
    }
  }
  if (wrong == 0) return checkSameOrder();
  return invalidArgument("wrong output: " + report + " (" + std::to_string(wrong) +
                         " wrong elements on " + std::to_string(wrongRanks) + " ranks)");
}

Status SymbolicRun::checkSameOrder() {
  if (model_.ranks.empty() || model_.ranks[0].args.collective != Collective::kAllReduce) {
    return Status::ok();
  }
  const RankModel& first = model_.ranks[0];
  const uint64_t outputs = first.logical[bufferIndex(BufferId::kOutput)];
  for (uint64_t j = 0; j < outputs; ++j) {
    auto exprOf = [&](const RankModel& rank) {
      BufferId buffer;
      const uint64_t e = outputLocation(rank, j, &buffer);
      return at(rank.rank, buffer, e).expr;
    };
    const uint32_t want = exprOf(first);
    for (const RankModel& rank : model_.ranks) {
      const uint32_t seen = exprOf(rank);
      if (seen == want) continue;
      return invalidArgument("r" + std::to_string(rank.rank) + " " +
                             elementName(BufferId::kOutput, j) + " is " + exprs_.describe(seen) +
                             " but r" + std::to_string(first.rank) + "'s is " +
                             exprs_.describe(want) +
                             ": an AllReduce must combine in one order on every rank, or ranks "
                             "get different bits");
    }
  }
  return Status::ok();
}

Status SymbolicRun::checkBarrier() {
  if (!barrier_) return Status::ok();
  const int words = sets_.words();
  for (const RankModel& rank : model_.ranks) {
    std::vector<uint64_t> done(words, 0);
    done[rank.rank / 64] |= uint64_t{1} << (rank.rank % 64);
    for (uint32_t first : graph_.firstNode[rank.rank]) {
      const Node& head = graph_.nodes[first];
      const size_t steps = rank.canon.channels[head.channel].steps.size();
      for (size_t i = 0; i < steps; ++i) {
        for (int w = 0; w < words; ++w) {
          done[w] |= clock(first + i)[w];
        }
      }
    }
    const uint32_t known = sets_.intern(done.data());
    if (sets_.isAll(known)) continue;
    return invalidArgument("barrier: r" + std::to_string(rank.rank) + " may finish before " +
                           sets_.describe(sets_.missingFrom(known)) +
                           " started: no chain of messages and dependencies leads from their "
                           "start to its end");
  }
  return Status::ok();
}

}  // namespace

Status checkValues(const Model& model, const Graph& graph) {
  SymbolicRun run(model, graph);
  LOOM_RETURN_IF_ERROR(runGraph(model, graph, Progress::kDataflowBuffered,
                                [&run](uint32_t x) { return run.fire(x); }));
  LOOM_RETURN_IF_ERROR(run.checkOutputs());
  return run.checkBarrier();
}

}  // namespace loom::algo::verify_detail
