#include "trace.h"

#include <algorithm>
#include <map>
#include <utility>

namespace loom::trainer {

std::string validateTrace(const RoundTrace& trace, const std::vector<int>& mbs) {
  const int p = static_cast<int>(trace.size());
  std::map<std::pair<int, int>, const TraceEvent*> fwd, bwd;  // (stage, mb)
  for (int s = 0; s < p; ++s) {
    std::map<int, int> seenF, seenB;
    for (const TraceEvent& e : trace[s]) {
      if (e.stage != s) return "stage " + std::to_string(s) + " has an event of another stage";
      if (e.kind == 'F') {
        ++seenF[e.mb];
        fwd[{s, e.mb}] = &e;
      } else {
        if (!seenF.count(e.mb))
          return "stage " + std::to_string(s) + " ran B" + std::to_string(e.mb) + " before F";
        ++seenB[e.mb];
        bwd[{s, e.mb}] = &e;
      }
    }
    for (int j : mbs)
      if (seenF[j] != 1 || seenB[j] != 1)
        return "stage " + std::to_string(s) + " ran micro-batch " + std::to_string(j) + " " +
               std::to_string(seenF[j]) + "x F and " + std::to_string(seenB[j]) + "x B";
    if (trace[s].size() != 2 * mbs.size()) return "stage " + std::to_string(s) + " ran extra work";
  }
  for (int s = 0; s + 1 < p; ++s)
    for (int j : mbs) {
      if (fwd[{s, j}]->endNs > fwd[{s + 1, j}]->startNs)
        return "F" + std::to_string(j) + " started on stage " + std::to_string(s + 1) +
               " before stage " + std::to_string(s) + " finished it";
      if (bwd[{s + 1, j}]->endNs > bwd[{s, j}]->startNs)
        return "B" + std::to_string(j) + " started on stage " + std::to_string(s) +
               " before stage " + std::to_string(s + 1) + " finished it";
    }
  return "";
}

void logicalIdle(const RoundTrace& trace, int64_t* idle, int64_t* total) {
  const int p = static_cast<int>(trace.size());
  std::map<std::pair<int, int>, int64_t> doneF, doneB;
  std::vector<size_t> next(p, 0);
  std::vector<int64_t> freeAt(p, 0);
  int64_t busy = 0, makespan = 0;
  // Repeatedly run, on any stage, the next operation whose dependencies are done. The
  // dependencies are acyclic for a valid trace, so this terminates.
  for (bool progressed = true; progressed;) {
    progressed = false;
    for (int s = 0; s < p; ++s) {
      if (next[s] >= trace[s].size()) continue;
      const TraceEvent& e = trace[s][next[s]];
      int64_t ready = freeAt[s];
      if (e.kind == 'F') {
        if (s > 0) {
          auto it = doneF.find({s - 1, e.mb});
          if (it == doneF.end()) continue;
          ready = std::max(ready, it->second);
        }
      } else if (s + 1 < p) {
        auto it = doneB.find({s + 1, e.mb});
        if (it == doneB.end()) continue;
        ready = std::max(ready, it->second);
      }
      const int64_t cost = e.kind == 'F' ? 1 : 2;
      const int64_t end = ready + cost;
      (e.kind == 'F' ? doneF : doneB)[{s, e.mb}] = end;
      freeAt[s] = end;
      busy += cost;
      makespan = std::max(makespan, end);
      ++next[s];
      progressed = true;
    }
  }
  *total = static_cast<int64_t>(p) * makespan;
  *idle = *total - busy;
}

}  // namespace loom::trainer
