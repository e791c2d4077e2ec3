#include "calibrate.h"

#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string_view>
#include <vector>

#include "json.h"
#include "loom/loom.h"

extern char** environ;

namespace loom::perf {
namespace {

// Built-in defaults of the cost model (algorithms/cost_model.h), used when a measurement fails.
struct Profile {
  double intraAlpha = 1.5, intraGbps = 6.0, interAlpha = 30.0, interGbps = 1.5;
  double reduceGbps = 4.0, stepUs = 0.4, wakeUs = 15.0, windowUs = 0.8, copyGbps = 20.0;
  std::vector<std::string> notes;
};

// memcpy and float-sum bandwidths in this process (1e9 B/s of one input): the best of 8 rounds
// on 16 MiB vectors, after one that touches every page. The sum, dst = a + b, reads a second
// input; what it costs beyond the memcpy is the model's γ (reduce.gbps). The loop is this
// file's own (loom-perf uses only loom's public API), vectorised by the compiler like loom's
// baseline kernels; at 16 MiB both are bound by memory, not by the instructions.
struct HostRates {
  double copyGbps = 0;
  double reduceGbps = 0;  // 0: the sum was not slower than the copy
};

HostRates hostRates() {
  const size_t count = size_t{4} << 20, bytes = count * sizeof(float);
  std::vector<float> a(count, 1.0f), b(count, 2.0f), c(count, 0.0f);
  double copy = 1e30, sum = 1e30;
  for (int i = 0; i < 9; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    std::memcpy(c.data(), a.data(), bytes);
    auto t1 = std::chrono::steady_clock::now();
    a[static_cast<size_t>(i)] = c[count - 1 - static_cast<size_t>(i)];  // the copy is used
    float* __restrict dst = c.data();
    const float* __restrict x = a.data();
    const float* __restrict y = b.data();
    auto t2 = std::chrono::steady_clock::now();
    for (size_t j = 0; j < count; ++j)
      dst[j] = x[j] + y[j];
    auto t3 = std::chrono::steady_clock::now();
    b[static_cast<size_t>(i)] = c[count - 1 - static_cast<size_t>(i)];  // the sum is used
    if (i == 0) continue;
    copy = std::min(copy, std::chrono::duration<double>(t1 - t0).count());
    sum = std::min(sum, std::chrono::duration<double>(t3 - t2).count());
  }
  HostRates r;
  r.copyGbps = static_cast<double>(bytes) / copy * 1e-9;
  if (sum > copy) r.reduceGbps = static_cast<double>(bytes) / (sum - copy) * 1e-9;
  return r;
}

std::string tempPath() {
  char path[] = "/tmp/loom-calibrate-XXXXXX";
  const int fd = mkstemp(path);
  if (fd >= 0) close(fd);
  return path;
}

// Runs `self args --json tmp` with extra environment; the time (us, out of place) per size.
std::optional<std::vector<std::pair<size_t, double>>> run(const std::string& self,
                                                          std::vector<std::string> args,
                                                          const std::vector<std::string>& extraEnv,
                                                          bool quiet = false) {
  const std::string json = tempPath();
  args.insert(args.begin(), self);
  args.push_back("--json");
  args.push_back(json);
  std::vector<char*> argv;
  for (std::string& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> envStore(extraEnv);
  for (char** e = environ; *e != nullptr; ++e)
    envStore.emplace_back(*e);
  std::vector<char*> envp;
  for (std::string& e : envStore)
    envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", 0, 0);
  if (quiet) posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, self.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return std::nullopt;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::ifstream in(json);
  std::stringstream text;
  text << in.rdbuf();
  std::remove(json.c_str());
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  std::vector<RunRecord> runs;
  std::string error;
  if (!readRunsJson(text.str(), &runs, &error) || runs.empty()) return std::nullopt;
  std::vector<std::pair<size_t, double>> out;
  for (const RowRecord& row : runs[0].rows)
    if (row.outOfPlace.present) out.emplace_back(row.bytes, row.outOfPlace.timeUs);
  return out;
}

double timeAt(const std::vector<std::pair<size_t, double>>& rows, size_t bytes) {
  for (const auto& [b, t] : rows)
    if (b == bytes) return t;
  return -1;
}

// α and bandwidth of one transport from 2-process sendrecv.
void link(const std::string& self, const char* transport, double* alpha, double* gbps, Profile* p) {
  const std::string t = transport;
  auto small = run(self,
                   {"-np", "2", "sendrecv", "-b", "8", "-e", "8", "-n", "2000", "-w", "200", "-c",
                    "0", "--transport", t},
                   {});
  auto large = run(self,
                   {"-np", "2", "sendrecv", "-b", "1M", "-e", "16M", "-f", "16", "-n", "20", "-w",
                    "3", "-c", "0", "--transport", t},
                   {});
  if (small && timeAt(*small, 8) > 0) {
    *alpha = timeAt(*small, 8);
  } else {
    p->notes.push_back(t + ": small-message run failed; alpha is the default");
  }
  const double t1 = large ? timeAt(*large, 1 << 20) : -1,
               t16 = large ? timeAt(*large, 16 << 20) : -1;
  if (t1 > 0 && t16 > t1) {
    *gbps = (15.0 * (1 << 20)) / (t16 - t1) * 1e-3;  // bytes per us -> GB/s
  } else {
    p->notes.push_back(t + ": bandwidth run failed or was not monotonic; gbps is the default");
  }
}

// --tune: the collectives whose algorithms are timed, as loom-perf and loom name them.
struct TunedCollective {
  const char* perfName;
  loomCollective_t collective;
  const char* loomName;  // LOOM_ALGO's name
};
constexpr TunedCollective kTuned[] = {
    {"all_reduce", loomCollAllReduce, "allreduce"},
    {"all_gather", loomCollAllGather, "allgather"},
    {"reduce_scatter", loomCollReduceScatter, "reducescatter"},
    {"broadcast", loomCollBroadcast, "broadcast"},
    {"reduce", loomCollReduce, "reduce"},
    {"alltoall", loomCollAllToAll, "alltoall"},
};

std::string sizeText(size_t bytes) {
  const std::pair<size_t, const char*> units[] = {
      {1u << 30, "G"}, {1u << 20, "M"}, {1u << 10, "K"}};
  for (const auto& [unit, suffix] : units)
    if (bytes >= unit && bytes % unit == 0) return std::to_string(bytes / unit) + suffix;
  return std::to_string(bytes);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// One measured.np<N> line: every algorithm of every tuned collective forced in turn on N
// processes of this host, `runs` times interleaved, sizes 8 B to maxBytes by 4x (up to 64 KiB
// with 1000 timed iterations, above with 30); per size the least median wins (the previous
// size's winner stays while within 3% of it), and the size ranges between measured sizes are
// split at their geometric mean, rounded to a power of two. Empty when nothing ran.
std::string tuneLine(const std::string& self, int nranks, size_t maxBytes, int runs) {
  // times[collective][algorithm][bytes] = one time per run (us, out of place)
  std::map<std::string, std::map<std::string, std::map<size_t, std::vector<double>>>> times;
  const size_t smallMax = std::min<size_t>(maxBytes, 64 << 10);
  size_t largeMin = 8;  // the first size of 8 B * 4^k above smallMax
  while (largeMin <= smallMax)
    largeMin *= 4;
  for (int r = 0; r < runs; ++r) {
    for (const TunedCollective& t : kTuned) {
      const char* const* names = nullptr;
      int count = 0;
      if (loomGetAlgorithms(t.collective, &names, &count) != loomSuccess) continue;
      for (int a = 0; a < count; ++a) {
        // On one host a hierarchical schedule is a flat algorithm under another name (the
        // formulas never pick it there either, docs/ALGORITHMS.md).
        if (std::string_view(names[a]) == "hierarchical") continue;
        std::fprintf(stderr, "loom-perf --calibrate: np %d, run %d/%d, %s %s\n", nranks, r + 1,
                     runs, t.perfName, names[a]);
        std::vector<std::vector<std::string>> parts = {
            {"-b", "8", "-e", sizeText(smallMax), "-n", "1000", "-w", "100"}};
        if (largeMin <= maxBytes)
          parts.push_back(
              {"-b", std::to_string(largeMin), "-e", sizeText(maxBytes), "-n", "30", "-w", "5"});
        for (std::vector<std::string> part : parts) {
          std::vector<std::string> args = {"-np",      std::to_string(nranks),
                                           t.perfName, "-f",
                                           "4",        "-c",
                                           "0",        "-T",
                                           "120",      "--algo",
                                           names[a]};
          args.insert(args.end(), part.begin(), part.end());
          const auto rows = run(self, args, {}, /*quiet=*/true);
          if (!rows) continue;  // the algorithm does not support this call, or it failed
          for (const auto& [bytes, us] : *rows)
            if (bytes > 0 && us > 0) times[t.loomName][names[a]][bytes].push_back(us);
        }
      }
    }
  }
  std::string line;
  for (const TunedCollective& t : kTuned) {
    const auto found = times.find(t.loomName);
    if (found == times.end()) continue;
    // medians[bytes][algorithm]: complete sets of runs only
    std::map<size_t, std::map<std::string, double>> medians;
    for (const auto& [algorithm, bySize] : found->second)
      for (const auto& [bytes, us] : bySize)
        if (static_cast<int>(us.size()) == runs) medians[bytes][algorithm] = median(us);
    if (medians.empty()) continue;
    std::string ranges;
    size_t lo = 0, previous = 0;
    std::string current;
    for (const auto& [bytes, byAlgorithm] : medians) {
      std::pair<double, std::string> winner{1e300, ""};
      for (const auto& [algorithm, m] : byAlgorithm)
        if (m < winner.first) winner = {m, algorithm};
      // The algorithm of the range so far stays while it is within 3% of the fastest: a
      // difference that small is this kind of machine's noise, not a crossover.
      const auto kept = byAlgorithm.find(current);
      if (kept != byAlgorithm.end() && kept->second <= 1.03 * winner.first) winner.second = current;
      if (!current.empty() && winner.second != current) {
        // The geometric mean of the two sizes, rounded to a power of two.
        const double mean = std::sqrt(double(previous) * double(bytes));
        const size_t mid = std::clamp(size_t{1} << static_cast<int>(std::lround(std::log2(mean))),
                                      previous + 1, bytes);
        ranges += (ranges.empty() ? "" : ",") + sizeText(lo) + "-" + sizeText(mid) + "@" + current;
        lo = mid;
      }
      current = winner.second;
      previous = bytes;
    }
    ranges += (ranges.empty() ? "" : ",") + sizeText(lo) + "-inf@" + current;
    line += (line.empty() ? "" : ";") + std::string(t.loomName) + ":" + ranges;
  }
  return line;
}

}  // namespace

int calibrate(const std::string& self, const std::string& output, const std::vector<int>& tuneRanks,
              size_t tuneMaxBytes, int tuneRuns) {
  Profile p;
  std::fprintf(stderr, "loom-perf --calibrate: shared memory...\n");
  link(self, "shm", &p.intraAlpha, &p.intraGbps, &p);
  std::fprintf(stderr, "loom-perf --calibrate: sockets...\n");
  link(self, "socket", &p.interAlpha, &p.interGbps, &p);
  std::fprintf(stderr, "loom-perf --calibrate: reduction, step and wake-up costs...\n");
  const HostRates host = hostRates();
  if (host.reduceGbps > 0) {
    p.reduceGbps = host.reduceGbps;
  } else {
    p.notes.push_back("a float sum was not slower than memcpy; reduce.gbps is the default");
  }
  auto step =
      run(self, {"all_reduce", "-b", "8", "-e", "8", "-n", "20000", "-w", "1000", "-c", "0"}, {});
  if (step && timeAt(*step, 8) > 0) {
    p.stepUs = timeAt(*step, 8);
  } else {
    p.notes.push_back("one-rank all_reduce failed; step.us is the default");
  }
  auto wake = run(self,
                  {"-np", "2", "sendrecv", "-b", "8", "-e", "8", "-n", "500", "-w", "50", "-c", "0",
                   "--transport", "shm"},
                  {"LOOM_SPIN_US=0"});
  if (wake && timeAt(*wake, 8) > p.intraAlpha) {
    p.wakeUs = timeAt(*wake, 8) - p.intraAlpha;
  } else {
    p.notes.push_back("sleeping sendrecv was not slower than spinning; wake.us is the default");
  }
  // The host window (runtime/direct.h): an 8-byte one_shot between two processes is one step
  // and one flag hand-off; copies are timed with memcpy in this process.
  auto window = run(self,
                    {"-np", "2", "all_reduce", "-b", "8", "-e", "8", "-n", "20000", "-w", "1000",
                     "-c", "0", "--transport", "shm", "--algo", "one_shot"},
                    {});
  if (window && timeAt(*window, 8) > p.stepUs) {
    p.windowUs = timeAt(*window, 8) - p.stepUs;
  } else {
    p.notes.push_back(
        "two-process one_shot failed or was faster than a step; window.us is the "
        "default");
  }
  p.copyGbps = host.copyGbps;
  std::ostringstream text;
  text << "# loom cost-model profile, written by loom-perf --calibrate on " << nowString() << "\n";
  for (const std::string& note : p.notes)
    text << "# note: " << note << "\n";
  char buf[640];
  std::snprintf(buf, sizeof buf,
                "intra.alpha_us %.3f\nintra.gbps %.3f\ninter.alpha_us %.3f\ninter.gbps %.3f\n"
                "reduce.gbps %.3f\nstep.us %.3f\nwake.us %.3f\nwindow.us %.3f\ncopy.gbps %.3f\n",
                p.intraAlpha, p.intraGbps, p.interAlpha, p.interGbps, p.reduceGbps, p.stepUs,
                p.wakeUs, p.windowUs, p.copyGbps);
  text << buf;
  for (const int n : tuneRanks) {
    const std::string line = tuneLine(self, n, tuneMaxBytes, tuneRuns);
    if (line.empty()) {
      text << "# note: --tune " << n << ": no algorithm ran on " << n << " processes\n";
      continue;
    }
    text << "# measured on " << n << " processes of this host, 8 B to " << sizeText(tuneMaxBytes)
         << ", the least median of " << tuneRuns << " runs per size\n";
    text << "measured.np" << n << " " << line << "\n";
  }
  if (output == "-") {
    std::fputs(text.str().c_str(), stdout);
    return 0;
  }
  std::ofstream out(output);
  out << text.str();
  out.close();
  if (!out) {
    std::fprintf(stderr, "loom-perf --calibrate: cannot write %s\n", output.c_str());
    return 1;
  }
  std::fprintf(stderr, "loom-perf --calibrate: wrote %s (use LOOM_TUNING_FILE=%s)\n%s",
               output.c_str(), output.c_str(), text.str().c_str());
  return 0;
}

}  // namespace loom::perf
