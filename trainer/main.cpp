// loom-train - the reference trainer's command line (TRAINER.md). Ranks are this process's
// threads (--threads, or a one-rank job) or the processes of a launcher:
//   loomrun -np 8 loom-train --dp 2 --tp 2 --pp 2 --steps 20
#include <cstdio>
#include <string>

#include "model_spec.h"
#include "run.h"

namespace {

using loom::trainer::RunOptions;
using loom::trainer::RunResult;
using loom::trainer::TrainConfig;

bool writeText(const std::string& path, const std::string& text) {
  if (path == "-") return std::fputs(text.c_str(), stdout) >= 0;
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) return false;
  const bool ok = std::fputs(text.c_str(), f) >= 0;
  return std::fclose(f) == 0 && ok;
}

std::string paramsText(const TrainConfig& cfg, const std::vector<double>& params) {
  std::string out;
  size_t off = 0;
  char buf[64];
  for (const auto& t : loom::trainer::modelTensors(cfg.moe)) {
    out += "# " + t.name + " " + std::to_string(t.rows) + " " + std::to_string(t.cols) + "\n";
    for (size_t e = 0; e < t.numel(); ++e) {
      std::snprintf(buf, sizeof(buf), "%.17g\n", params[off + e]);
      out += buf;
    }
    off += t.numel();
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  TrainConfig cfg;
  loom::Status s = loom::trainer::parseArgs(argc, argv, &cfg);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    return 2;
  }
  RunOptions opt;
  opt.gatherFinal = !cfg.dumpParamsPath.empty();
  opt.print = cfg.quiet ? nullptr : stdout;
  RunResult result;
  const bool inProcess = cfg.threads || cfg.world() == 1;
  s = inProcess ? loom::trainer::runThreads(cfg, opt, &result)
                : loom::trainer::runProcess(cfg, opt, &result);
  if (!s.ok()) {
    const bool ours = s.message().rfind("loom-train", 0) == 0;
    std::fprintf(stderr, "%s%s\n", ours ? "" : "loom-train: ", s.message().c_str());
    return 1;
  }
  if (!cfg.tracePath.empty()) {
    std::string text;
    for (const auto& r : result.ranks)
      text += loom::trainer::traceText(r);
    const std::string path =
        inProcess ? cfg.tracePath
                  : cfg.tracePath + "." + std::to_string(result.ranks[0].coords.rank);
    if (!writeText(path, text)) {
      std::fprintf(stderr, "loom-train: cannot write %s\n", path.c_str());
      return 1;
    }
  }
  // Only world rank 0 holds the records (the other processes of a job have none).
  if (result.steps.empty() && cfg.steps > 0) return 0;
  if (opt.print) std::fputs(loom::trainer::summaryText(result.ranks[0]).c_str(), stdout);
  if (!cfg.jsonPath.empty() && !writeText(cfg.jsonPath, result.json)) {
    std::fprintf(stderr, "loom-train: cannot write %s\n", cfg.jsonPath.c_str());
    return 1;
  }
  if (!cfg.dumpParamsPath.empty() &&
      !writeText(cfg.dumpParamsPath, paramsText(cfg, result.finalParams))) {
    std::fprintf(stderr, "loom-train: cannot write %s\n", cfg.dumpParamsPath.c_str());
    return 1;
  }
  return 0;
}
