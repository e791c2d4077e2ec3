#include "run.h"

#include <cstdio>
#include <thread>

namespace loom::trainer {

namespace {

template <typename T>
Status trainRank(const TrainConfig& cfg, const RunOptions& opt, Groups* g, RunResult* shared,
                 RankReport* mine) {
  const bool root = g->coords.rank == 0;
  FILE* print = root ? opt.print : nullptr;
  if (print) std::fprintf(print, "%s", groupTable(cfg).c_str());
  Trainer<T> trainer(cfg, g);
  Status s = trainer.init();
  if (!s.ok()) return s;
  mine->coords = g->coords;
  mine->counters.push_back(trainer.counters());
  if (opt.gatherInitial) {
    s = trainer.gatherParams(root ? &shared->initialParams : nullptr, nullptr);
    if (!s.ok()) return s;
    mine->counters[0] = trainer.counters();
  }
  std::vector<double> grads;
  for (int step = 0; step < cfg.steps; ++step) {
    StepRecord rec;
    const bool capture = opt.captureStep1Grads && step == 0;
    s = trainer.step(step, &rec, capture ? &grads : nullptr);
    if (!s.ok()) return s;
    mine->counters.push_back(trainer.counters());
    if (!root) continue;
    if (capture) shared->step1Grads = grads;
    shared->steps.push_back(rec);
    shared->json += jsonLine(rec) + "\n";
    if (print)
      std::fprintf(print, "step %3d  loss %.6f  grad_norm %.6f  loss_scale %g%s\n", rec.step,
                   rec.loss, rec.gradNorm, rec.lossScale, rec.skipped ? "  (skipped)" : "");
  }
  if (opt.keepLocal) {
    std::vector<T> dense, expert;
    s = trainer.localParams(&dense, &expert);
    if (!s.ok()) return s;
    mine->localDense.assign(dense.begin(), dense.end());
    mine->localExpert.assign(expert.begin(), expert.end());
  }
  if (opt.gatherFinal) {
    int mismatches = 0;
    s = trainer.gatherParams(root ? &shared->finalParams : nullptr, &mismatches);
    if (!s.ok()) return s;
    if (root) shared->replicaMismatches = mismatches;
  }
  mine->trace = trainer.trace();
  mine->memory = trainer.memory().report();
  mine->peakStashed = trainer.peakStashed();
  return Status();
}

Status trainAny(const TrainConfig& cfg, const RunOptions& opt, Groups* g, RunResult* shared,
                RankReport* mine) {
  return cfg.fp64 ? trainRank<double>(cfg, opt, g, shared, mine)
                  : trainRank<float>(cfg, opt, g, shared, mine);
}

}  // namespace

std::string traceText(const RankReport& r) {
  std::string out;
  char line[160];
  for (const TraceEvent& e : r.trace) {
    std::snprintf(line, sizeof(line), "%d %d %d %d %c %d %lld %lld\n", r.coords.rank, e.stage,
                  e.step + 1, e.round, e.kind, e.mb, static_cast<long long>(e.startNs),
                  static_cast<long long>(e.endNs));
    out += line;
  }
  return out;
}

std::string summaryText(const RankReport& r) {
  std::string out = "rank " + std::to_string(r.coords.rank) + " memory:";
  for (int t = 0; t < kNumMemTags; ++t)
    out += std::string(" ") + memTagName(static_cast<MemTag>(t)) + " " +
           std::to_string(r.memory.persistent[t]) + "/" + std::to_string(r.memory.peak[t]) + " B";
  out += " (persistent/peak), peak stashed micro-batches " + std::to_string(r.peakStashed) + "\n";
  if (r.counters.empty()) return out;
  out += "rank " + std::to_string(r.coords.rank) + " bytes sent:";
  for (int g = 0; g < kNumGroups; ++g) {
    uint64_t calls = 0, bytes = 0;
    for (int c = 0; c < loomNumColls; ++c) {
      calls += r.counters.back()[g].calls[c] - r.counters.front()[g].calls[c];
      bytes += r.counters.back()[g].bytesSent[c] - r.counters.front()[g].bytesSent[c];
    }
    if (calls)
      out += std::string(" ") + groupName(static_cast<GroupKind>(g)) + " " + std::to_string(bytes) +
             " B in " + std::to_string(calls) + " calls;";
  }
  return out + "\n";
}

Status runThreads(const TrainConfig& cfg, const RunOptions& opt, RunResult* out) {
  Status v = validate(cfg);
  if (!v.ok()) return v;
  const int n = cfg.world();
  std::vector<loom::Communicator> comms;
  loomConfig_t lc = LOOM_CONFIG_INITIALIZER;
  lc.commName = "loom-train";
  Status s = loom::Communicator::initAll(n, &comms, &lc);
  if (!s.ok()) return s;
  *out = RunResult();
  out->ranks.resize(static_cast<size_t>(n));
  std::vector<Status> results(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r] {
      Groups g;
      Status st = makeGroups(std::move(comms[r]), cfg, &g);
      if (st.ok()) st = trainAny(cfg, opt, &g, out, &out->ranks[r]);
      // A failed rank aborts its communicators so that its peers fail instead of waiting.
      if (!st.ok()) {
        for (int k = kNumGroups - 1; k >= 0; --k)
          if (g.get(static_cast<GroupKind>(k)).valid()) g.get(static_cast<GroupKind>(k)).abort();
      }
      results[r] = st;
    });
  for (std::thread& t : threads)
    t.join();
  for (const Status& st : results)
    if (!st.ok()) return st;
  return Status();
}

Status runProcess(const TrainConfig& cfg, const RunOptions& opt, RunResult* out) {
  Status v = validate(cfg);
  if (!v.ok()) return v;
  loom::Communicator world;
  loomConfig_t lc = LOOM_CONFIG_INITIALIZER;
  lc.commName = "loom-train";
  Status s = loom::Communicator::initEnv(&world, &lc);
  if (!s.ok())
    return Status(s.code(), s.message() + " (or pass --threads to run the " +
                                std::to_string(cfg.world()) + " ranks as threads of this process)");
  Groups g;
  s = makeGroups(std::move(world), cfg, &g);
  if (!s.ok()) return s;
  *out = RunResult();
  out->ranks.resize(1);
  return trainAny(cfg, opt, &g, out, &out->ranks[0]);
}

}  // namespace loom::trainer
