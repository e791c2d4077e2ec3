#include "calibrate.h"

#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

#include "json.h"

extern char** environ;

namespace loom::perf {
namespace {

// Built-in defaults of the cost model (algorithms/cost_model.h), used when a measurement fails.
struct Profile {
  double intraAlpha = 2.5, intraGbps = 6.0, interAlpha = 30.0, interGbps = 1.5;
  double reduceGbps = 4.0, stepUs = 0.4, wakeUs = 15.0, windowUs = 0.8, copyGbps = 13.0;
  std::vector<std::string> notes;
};

// memcpy bandwidth in this process (1e9 B/s): the best of 8 copies of 16 MiB, after one that
// touches every page.
double memcpyGbps() {
  const size_t bytes = size_t{16} << 20;
  std::vector<char> a(bytes, 1), b(bytes, 2);
  double best = 1e30;
  for (int i = 0; i < 9; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    std::memcpy(b.data(), a.data(), bytes);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (i > 0) best = std::min(best, s);
    a[i] = b[bytes - 1 - i];  // the copies are used
  }
  return static_cast<double>(bytes) / best * 1e-9;
}

std::string tempPath() {
  char path[] = "/tmp/loom-calibrate-XXXXXX";
  const int fd = mkstemp(path);
  if (fd >= 0) close(fd);
  return path;
}

// Runs `self args --json tmp` with extra environment; the time (us, out of place) per size.
std::optional<std::vector<std::pair<size_t, double>>> run(
    const std::string& self, std::vector<std::string> args,
    const std::vector<std::string>& extraEnv) {
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

}  // namespace

int calibrate(const std::string& self, const std::string& output) {
  Profile p;
  std::fprintf(stderr, "loom-perf --calibrate: shared memory...\n");
  link(self, "shm", &p.intraAlpha, &p.intraGbps, &p);
  std::fprintf(stderr, "loom-perf --calibrate: sockets...\n");
  link(self, "socket", &p.interAlpha, &p.interGbps, &p);
  std::fprintf(stderr, "loom-perf --calibrate: reduction, step and wake-up costs...\n");
  const std::vector<std::string> bw = {"-b", "16M", "-e", "16M", "-n", "10", "-w", "2", "-c", "0"};
  auto withBw = [&](std::vector<std::string> head) {
    head.insert(head.end(), bw.begin(), bw.end());
    return head;
  };
  auto rs = run(self, withBw({"-np", "2", "reduce_scatter", "--transport", "shm"}), {});
  auto ag = run(self, withBw({"-np", "2", "all_gather", "--transport", "shm"}), {});
  const double trs = rs ? timeAt(*rs, 16 << 20) : -1, tag = ag ? timeAt(*ag, 16 << 20) : -1;
  if (trs > 0 && tag > 0 && trs > tag) {
    p.reduceGbps = (8.0 * (1 << 20)) / (trs - tag) * 1e-3;  // 2 ranks reduce 8 MiB each
  } else {
    p.notes.push_back("reduce_scatter was not slower than all_gather; reduce.gbps is the default");
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
  p.copyGbps = memcpyGbps();
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
