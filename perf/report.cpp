#include "report.h"

#include "loom/loom.h"

namespace loom::perf {

std::string formatTime(double timeUs) {
  char buf[64];
  if (timeUs >= 10000.0)
    std::snprintf(buf, sizeof(buf), "%7.0f", timeUs);
  else if (timeUs >= 100.0)
    std::snprintf(buf, sizeof(buf), "%7.1f", timeUs);
  else
    std::snprintf(buf, sizeof(buf), "%7.2f", timeUs);
  return buf;
}

void Reporter::header(const CollInfo& coll, int nranks, int nprocs,
                      const std::vector<RankDesc>& ranks, const std::string& transport,
                      const std::string& algo) {
  if (peerFormat()) {
    std::fprintf(out_, "# library: loom %d.%d.%d (loom-perf %s, transport %s, LOOM_ALGO %s)\n",
                 LOOM_MAJOR, LOOM_MINOR, LOOM_PATCH, coll.name, transport.c_str(),
                 algo.empty() ? "default" : algo.c_str());
    return;
  }
  const Options& o = options_;
  const bool factor = o.stepFactor > 1;
  std::fprintf(out_,
               "# nThread %d nGpus %d minBytes %zu maxBytes %zu step: %zu(%s) warmup iters: %d "
               "iters: %d agg iters: %d validation: %d graph: %d\n",
               o.nThreads, o.nGpus, o.minBytes, o.maxBytes, factor ? o.stepFactor : o.stepBytes,
               factor ? "factor" : "bytes", o.warmupIters, o.iters, o.aggIters, o.check, 0);
  std::fprintf(out_,
               "# loom-perf %s: loom %d.%d.%d, %d ranks (%d processes x %d threads), transport "
               "%s, LOOM_ALGO %s, %s buffers%s\n",
               coll.name, LOOM_MAJOR, LOOM_MINOR, LOOM_PATCH, nranks, nprocs, o.nThreads,
               transport.c_str(), algo.empty() ? "default" : algo.c_str(),
               o.device == "cuda" ? "device (CUDA)" : "host",
               o.budgetSec > 0 ? ", adaptive iterations (--budget)" : "");
  if (o.blocking) {
    std::fprintf(out_,
                 "# Blocking Enabled: wait for completion and barrier after each collective \n");
  }
  std::fprintf(out_, "#\n# Using devices\n");
  for (const RankDesc& r : ranks) {
    std::fprintf(out_, "#  Rank %2d Group %2d Pid %6d on %10s device %2d [%s] %s\n", r.rank, 0,
                 r.pid, r.host.c_str(), -1, "host", "host memory");
  }
  const char* time = o.reportCpuTime ? "cputime" : "time";
  std::fprintf(out_, "#\n");
  std::fprintf(out_,
               "# %10s  %12s  %8s  %6s  %6s           out-of-place                       "
               "in-place          \n",
               "", "", "", "", "");
  std::fprintf(out_, "# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s %6s  %7s  %6s  %6s %6s\n", "size",
               "count", "type", "redop", "root", time, "algbw", "busbw", "#wrong", time, "algbw",
               "busbw", "#wrong");
  std::fprintf(out_, "# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %5s  %7s  %6s  %6s  %5s\n", "(B)",
               "(elements)", "", "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)", "(GB/s)", "(GB/s)",
               "");
  std::fflush(out_);
}

void Reporter::peerHeader(const CollInfo& coll, int nranks, const char* type, const char* op) {
  std::fprintf(out_, "# label=%s collective=%s nranks=%d dtype=%s op=%s\n",
               options_.peerLabel.c_str(), coll.peerName, nranks, type, op);
  std::fprintf(out_, "# %12s %12s %6s %12s %10s %10s %8s\n", "size(B)", "count", "iters", "time_us",
               "algbw_GBs", "busbw_GBs", "wrong");
  std::fflush(out_);
}

void Reporter::rowStart(const RowRecord& row) {
  row_ = &row;
  if (peerFormat()) return;
  char root[32];
  std::snprintf(root, sizeof(root), "%6i", row.root);
  std::fprintf(out_, "%12zu  %12zu  %8s  %6s  %6s", row.bytes, row.count, row.type.c_str(),
               row.redop.c_str(), root);
}

void Reporter::rowBody(const Measurement& m) {
  if (peerFormat()) {
    // The peers' raw line (summarize.py reads size, time, busbw and wrong; count here is the
    // call's count argument).
    std::fprintf(out_, "  %12zu %12zu %6d %12.2f %10.3f %10.3f %8lld\n", row_->bytes, row_->count,
                 m.iters, m.timeUs, m.algBw, m.busBw,
                 static_cast<long long>(m.wrong < 0 ? 0 : m.wrong));
    std::fflush(out_);
    return;
  }
  const std::string time = formatTime(m.timeUs);
  if (m.wrong >= 0) {
    std::fprintf(out_, "  %7s  %6.2f  %6.2f  %5g", time.c_str(), m.algBw, m.busBw,
                 static_cast<double>(m.wrong));
  } else {
    std::fprintf(out_, "  %7s  %6.2f  %6.2f  %5s", time.c_str(), m.algBw, m.busBw, "N/A");
  }
}

void Reporter::rowEnd() {
  row_ = nullptr;
  if (peerFormat()) return;
  std::fprintf(out_, "\n");
  std::fflush(out_);
}

void Reporter::footer(int outOfBounds, double avgBusBw) {
  if (peerFormat()) return;
  std::fprintf(out_, "# Out of bounds values : %d %s\n", outOfBounds,
               outOfBounds ? "FAILED" : "OK");
  std::fprintf(out_, "# Avg bus bandwidth    : %g \n", avgBusBw);
  std::fprintf(out_, "#\n\n");
  std::fflush(out_);
}

}  // namespace loom::perf
