// The simulator's step graph (simulate_internal.h): per channel, which earlier steps a step
// waits for (a map of element ranges to their last writer and readers since), and which step
// each message meets.
#include <algorithm>
#include <map>
#include <tuple>

#include "algorithms/simulate_internal.h"

namespace loom::algo::sim {
namespace {

// Elements [start, end) of one buffer: the last step that wrote them and the steps that read
// them since.
struct Segment {
  uint64_t end = 0;
  int writer = -1;
  std::vector<int> readers;
};
using SegmentMap = std::map<uint64_t, Segment>;

// Splits the segment holding `at` (if any) so that a segment starts at `at`.
void splitAt(SegmentMap* map, uint64_t at) {
  auto it = map->upper_bound(at);
  if (it == map->begin()) return;
  --it;
  if (it->first == at || it->second.end <= at) return;
  Segment tail = it->second;
  it->second.end = at;
  map->emplace(at, std::move(tail));
}

// Calls fn on every segment of [lo, hi), creating empty ones for untouched gaps.
template <typename Fn>
void forRange(SegmentMap* map, uint64_t lo, uint64_t hi, Fn fn) {
  splitAt(map, lo);
  splitAt(map, hi);
  uint64_t at = lo;
  auto it = map->lower_bound(lo);
  while (at < hi) {
    if (it == map->end() || it->first > at) {
      const uint64_t gapEnd = it == map->end() ? hi : std::min(hi, it->first);
      it = map->emplace_hint(it, at, Segment{gapEnd, -1, {}});
    }
    fn(it->second);
    at = it->second.end;
    ++it;
  }
}

// Hazard tracking of one channel.
class ChannelHazards {
 public:
  // Appends to *deps the earlier nodes `node` (global index id) waits for, then records it.
  void add(const Node& node, int id, std::vector<int>* deps) {
    const size_t first = deps->size();
    if (node.fence) {
      deps->insert(deps->end(), sinceFence_.begin(), sinceFence_.end());
      if (lastFence_ >= 0) deps->push_back(lastFence_);
      lastFence_ = id;
      sinceFence_.clear();
      for (SegmentMap& m : buffers_)
        m.clear();
      return;
    }
    if (lastFence_ >= 0) deps->push_back(lastFence_);
    for (int r = 0; r < node.nreads; ++r) {
      const Region& reg = node.reads[r];
      forRange(&map(reg), reg.offset, reg.end(), [&](Segment& s) {
        if (s.writer >= 0) deps->push_back(s.writer);
      });
    }
    if (node.writes) {
      forRange(&map(node.write), node.write.offset, node.write.end(), [&](Segment& s) {
        if (s.writer >= 0) deps->push_back(s.writer);
        deps->insert(deps->end(), s.readers.begin(), s.readers.end());
      });
    }
    for (int r = 0; r < node.nreads; ++r) {
      const Region& reg = node.reads[r];
      forRange(&map(reg), reg.offset, reg.end(), [&](Segment& s) { s.readers.push_back(id); });
    }
    if (node.writes) {
      forRange(&map(node.write), node.write.offset, node.write.end(), [&](Segment& s) {
        s.writer = id;
        s.readers.clear();
      });
    }
    sinceFence_.push_back(id);
    // Unique, and never the node itself (a RecvReduce reading and writing one region).
    auto begin = deps->begin() + static_cast<std::ptrdiff_t>(first);
    std::sort(begin, deps->end());
    deps->erase(std::unique(begin, deps->end()), deps->end());
    deps->erase(std::remove(begin, deps->end(), id), deps->end());
  }

 private:
  SegmentMap& map(const Region& r) { return buffers_[static_cast<int>(r.buffer)]; }
  SegmentMap buffers_[3];
  int lastFence_ = -1;
  std::vector<int> sinceFence_;
};

Node nodeOf(const Step& step, int rank, int channel, int index) {
  Node n;
  n.rank = rank;
  n.channel = channel;
  n.index = index;
  n.kind = step.kind;
  n.peer = step.peer;
  n.count = step.count();
  n.fence = n.count == 0;
  switch (step.kind) {
    case StepKind::kSend:
      n.reads[n.nreads++] = step.src;
      break;
    case StepKind::kRecv:
      n.write = step.dst;
      n.writes = true;
      break;
    case StepKind::kRecvReduce:
    case StepKind::kCopy:
      n.reads[n.nreads++] = step.src;
      n.write = step.dst;
      n.writes = !(step.kind == StepKind::kCopy && step.src == step.dst);
      break;
    case StepKind::kReduce:
      n.reads[n.nreads++] = step.src;
      n.reads[n.nreads++] = step.src2;
      n.write = step.dst;
      n.writes = true;
      break;
  }
  return n;
}

bool isMessage(StepKind k) {
  return k == StepKind::kSend || k == StepKind::kRecv || k == StepKind::kRecvReduce;
}

std::string where(const Node& n) {
  return "rank " + std::to_string(n.rank) + " channel " + std::to_string(n.channel) + " step " +
         std::to_string(n.index) + " (" + stepKindName(n.kind) + " peer " + std::to_string(n.peer) +
         ")";
}

// Pairs the k-th send a -> b on channel c with the k-th receive of b from a on c.
Status matchMessages(Graph* g) {
  using Key = std::tuple<int, int, int>;  // channel, sender, receiver
  std::vector<std::pair<Key, int>> sends, recvs;
  for (int i = 0; i < static_cast<int>(g->nodes.size()); ++i) {
    const Node& n = g->nodes[static_cast<size_t>(i)];
    if (!isMessage(n.kind)) continue;
    if (n.kind == StepKind::kSend)
      sends.push_back({{n.channel, n.rank, n.peer}, i});
    else
      recvs.push_back({{n.channel, n.peer, n.rank}, i});
  }
  // Stable: nodes are in (rank, channel, index) order, so per key in step order.
  std::stable_sort(sends.begin(), sends.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::stable_sort(recvs.begin(), recvs.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  size_t i = 0;
  for (; i < sends.size() && i < recvs.size(); ++i) {
    Node& s = g->nodes[static_cast<size_t>(sends[i].second)];
    Node& r = g->nodes[static_cast<size_t>(recvs[i].second)];
    if (sends[i].first != recvs[i].first) {
      const Node& early = sends[i].first < recvs[i].first ? s : r;
      return invalidArgument("simulate: " + where(early) + " has no matching message");
    }
    if (s.count != r.count) {
      return invalidArgument("simulate: " + where(s) + " sends " + std::to_string(s.count) +
                             " elements but " + where(r) + " expects " + std::to_string(r.count));
    }
    s.match = recvs[i].second;
    r.match = sends[i].second;
  }
  if (i < sends.size() || i < recvs.size()) {
    const int id = i < sends.size() ? sends[i].second : recvs[i].second;
    return invalidArgument("simulate: " + where(g->nodes[static_cast<size_t>(id)]) +
                           " has no matching message");
  }
  return Status::ok();
}

}  // namespace

int slicesFor(uint64_t count, uint64_t elementBytes, uint64_t sliceBytes, int maxSlices) {
  if (count == 0 || sliceBytes == 0) return 1;
  const uint64_t bytes = count * elementBytes;
  const uint64_t s = (bytes + sliceBytes - 1) / sliceBytes;
  return static_cast<int>(
      std::clamp<uint64_t>(s, 1, static_cast<uint64_t>(std::max(1, maxSlices))));
}

namespace {

// Elements of slice k of a region cut into s slices.
uint64_t sliceStart(const Region& r, int s, int k) {
  return r.offset + r.count * static_cast<uint64_t>(k) / static_cast<uint64_t>(s);
}

// The slice of a region (cut into s) that holds element e (inside the region).
int sliceOf(const Region& r, int s, uint64_t e) {
  // Largest k with sliceStart(k) <= e.
  int k = static_cast<int>((e - r.offset) * static_cast<uint64_t>(s) / r.count);
  while (k + 1 < s && sliceStart(r, s, k + 1) <= e)
    ++k;
  while (k > 0 && sliceStart(r, s, k) > e)
    --k;
  return k;
}

// Slices of j (region rj) needed by slice k of i (region ri), 0 when they share no element.
int neededFor(const Region& ri, int si, int k, const Region& rj, int sj) {
  if (!overlaps(ri, rj)) return 0;
  const uint64_t lo = std::max(sliceStart(ri, si, k), rj.offset);
  const uint64_t hi = std::min(sliceStart(ri, si, k + 1), rj.end());
  if (lo >= hi) return 0;
  return sliceOf(rj, sj, hi - 1) + 1;
}

}  // namespace

int slicesNeeded(const Node& i, int k, const Node& j) {
  if (i.fence || j.fence) return j.slices;
  int need = 0;
  if (i.writes) {
    for (int r = 0; r < j.nreads; ++r)
      need = std::max(need, neededFor(i.write, i.slices, k, j.reads[r], j.slices));
    if (j.writes) need = std::max(need, neededFor(i.write, i.slices, k, j.write, j.slices));
  }
  if (j.writes) {
    for (int r = 0; r < i.nreads; ++r)
      need = std::max(need, neededFor(i.reads[r], i.slices, k, j.write, j.slices));
  }
  return need;
}

bool conflicts(const Step& a, const Step& b) {
  const Node na = nodeOf(a, 0, 0, 0), nb = nodeOf(b, 0, 0, 1);
  if (na.fence || nb.fence) return true;
  if (nb.writes) {
    for (int r = 0; r < na.nreads; ++r)
      if (overlaps(nb.write, na.reads[r])) return true;
    if (na.writes && overlaps(nb.write, na.write)) return true;
  }
  if (na.writes) {
    for (int r = 0; r < nb.nreads; ++r)
      if (overlaps(nb.reads[r], na.write)) return true;
  }
  return false;
}

Status buildGraph(const Schedule& schedule, const SimOptions& options, Graph* g) {
  g->nodes.clear();
  g->deps.clear();
  uint64_t total = 0;
  for (const RankSchedule& rs : schedule.ranks)
    for (const Channel& ch : rs.channels)
      total += ch.steps.size();
  if (total > options.maxExactSteps) {
    return invalidArgument("simulate: " + std::to_string(total) +
                           " steps exceed the exact simulation's limit of " +
                           std::to_string(options.maxExactSteps));
  }
  const uint64_t perStep =
      std::max<uint64_t>(1, options.maxExactSlices / std::max<uint64_t>(1, total));
  const int maxSlices = static_cast<int>(
      std::min<uint64_t>(static_cast<uint64_t>(std::max(1, options.maxSlicesPerStep)), perStep));
  g->nodes.reserve(total);
  for (int r = 0; r < static_cast<int>(schedule.ranks.size()); ++r) {
    const RankSchedule& rs = schedule.ranks[static_cast<size_t>(r)];
    for (int c = 0; c < static_cast<int>(rs.channels.size()); ++c) {
      ChannelHazards hazards;
      const auto& steps = rs.channels[static_cast<size_t>(c)].steps;
      for (int s = 0; s < static_cast<int>(steps.size()); ++s) {
        const Step& step = steps[static_cast<size_t>(s)];
        if (isMessage(step.kind) &&
            (step.peer < 0 || step.peer >= static_cast<int>(schedule.ranks.size()) ||
             step.peer == r)) {
          return invalidArgument("simulate: rank " + std::to_string(r) + " channel " +
                                 std::to_string(c) + " step " + std::to_string(s) + " names peer " +
                                 std::to_string(step.peer));
        }
        Node n = nodeOf(step, r, c, s);
        n.slices = slicesFor(n.count, options.elementBytes, options.sliceBytes, maxSlices);
        const int id = static_cast<int>(g->nodes.size());
        n.depBegin = static_cast<uint32_t>(g->deps.size());
        hazards.add(n, id, &g->deps);
        n.depEnd = static_cast<uint32_t>(g->deps.size());
        g->nodes.push_back(n);
      }
    }
  }
  LOOM_RETURN_IF_ERROR(matchMessages(g));
  // Reverse edges (CSR).
  const size_t n = g->nodes.size();
  g->revBegin.assign(n + 1, 0);
  for (int d : g->deps)
    ++g->revBegin[static_cast<size_t>(d) + 1];
  for (size_t i = 0; i < n; ++i)
    g->revBegin[i + 1] += g->revBegin[i];
  g->rev.assign(g->deps.size(), 0);
  std::vector<uint32_t> fill(g->revBegin.begin(), g->revBegin.end() - 1);
  for (size_t i = 0; i < n; ++i) {
    const Node& node = g->nodes[i];
    for (uint32_t k = node.depBegin; k < node.depEnd; ++k)
      g->rev[fill[static_cast<size_t>(g->deps[k])]++] = static_cast<int>(i);
  }
  return Status::ok();
}

}  // namespace loom::algo::sim
