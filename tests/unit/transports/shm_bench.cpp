// shm_bench: latency and bandwidth of the shm transport between two ranks (not a test).
//
//   shm_bench [--threads] [--fifo | --cma] [--bidir] [--slot-bytes N] [--slots N] [--min-single N]
//             [--chunk N] [--window N] [--reps N] [--no-pin] [--rt] [--sizes a,b,c]
//
// Ranks are two processes (default; rank 1 is fork()ed) or two threads, pinned to CPUs 0 and
// 1 unless --no-pin. Reports the one-way latency of an 8-byte ping-pong (half the round trip;
// best and median of 200 batches of 1000) and, for each size, the streaming bandwidth with
// `window` messages in flight (best and median of `reps` (15) runs of ~128 MiB; buffers are reused,
// as in osu_bw), per direction; --bidir streams both ways at once, as a collective does. Only
// batches/runs in which both ranks kept >= 97% of their core count (the machine is shared); the
// report says how many did. Drivers spin (no sleeping), as a blocking collective's driver does.
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "base/doorbell.h"
#include "base/time.h"
#include "transports/shm/shm_transport.h"

namespace loom::transport::shm {
namespace {

struct Args {
  bool threads = false;
  bool pin = true;
  bool bidir = false;
  // Each sample runs under SCHED_FIFO, with 100 ms pauses between samples: on a shared
  // machine this measures the transport rather than the neighbours, while the kernel's RT
  // throttling and the pauses leave them the CPUs most of the time.
  bool rt = false;  // both ranks stream to each other at once (a collective's pattern)
  int window = 8;
  int reps = 15;  // stream runs per size
  ShmOptions options;
  std::vector<size_t> sizes = {8192, 65536, 131072, 262144, 1 << 20, 4 << 20, 64 << 20};
};

void setRealtime(bool on) {
  sched_param p{};
  p.sched_priority = on ? 1 : 0;
  pthread_setschedparam(pthread_self(), on ? SCHED_FIFO : SCHED_OTHER, &p);
}

void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

Status spinUntil(Connection* c, uint64_t sends, uint64_t recvs) {
  Deadline deadline = Deadline::afterMs(60000);
  for (uint64_t n = 0; c->sendsCompleted() < sends || c->recvsCompleted() < recvs; ++n) {
    LOOM_RETURN_IF_ERROR(c->progress());
    if (n % 4096 == 0 && deadline.expired()) return timeoutError("benchmark wait timed out");
  }
  return Status::ok();
}

int64_t threadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Measures whether this thread kept its core during a run: on a shared machine a run in which
// either rank was descheduled measures the neighbours, not the transport.
class CpuShare {
 public:
  CpuShare() : wall_(nowNs()), cpu_(threadCpuNs()) {}
  double share() const {
    return static_cast<double>(threadCpuNs() - cpu_) / static_cast<double>(nowNs() - wall_);
  }

 private:
  int64_t wall_, cpu_;
};

constexpr double kUndisturbedShare = 0.97;

// Rank 1 sends its CPU share to rank 0, which returns the smaller of the two (rank 1: its own).
Result<double> pairShare(int rank, Connection* c, double mine) {
  double theirs = 1;
  if (rank == 1) {
    LOOM_RETURN_IF_ERROR(c->postSend(&mine, sizeof(mine), 8));
  } else {
    LOOM_RETURN_IF_ERROR(c->postRecv(&theirs, sizeof(theirs), 8));
  }
  LOOM_RETURN_IF_ERROR(spinUntil(c, c->sendsPosted(), c->recvsPosted()));
  return std::min(mine, theirs);
}

struct Stats {
  double best = 0, median = 0;
  size_t used = 0, total = 0;
};
// Best and median over the undisturbed samples (all samples if none was undisturbed).
Stats summarize(const std::vector<std::pair<double, double>>& samples, bool higherIsBetter) {
  std::vector<double> v;
  for (auto [value, share] : samples)
    if (share >= kUndisturbedShare) v.push_back(value);
  Stats s;
  s.used = v.size();
  s.total = samples.size();
  if (v.empty())
    for (auto [value, share] : samples)
      v.push_back(value);
  std::sort(v.begin(), v.end());
  s.best = higherIsBetter ? v.back() : v.front();
  s.median = v[v.size() / 2];
  return s;
}

// Ping-pong of `bytes`; returns (round trip in microseconds, CPU share), one per batch.
Result<std::vector<std::pair<double, double>>> pingPong(int rank, Connection* c, size_t bytes,
                                                        int batches, int perBatch) {
  std::vector<uint8_t> buf(bytes + 1);
  std::vector<std::pair<double, double>> rtts;
  for (int b = 0; b < batches + 1; ++b) {
    CpuShare cpu;
    int64_t start = nowNs();
    for (int i = 0; i < perBatch; ++i) {
      if (rank == 0) {
        LOOM_RETURN_IF_ERROR(c->postSend(buf.data(), bytes, 1));
        LOOM_RETURN_IF_ERROR(c->postRecv(buf.data(), bytes, 1));
      } else {
        LOOM_RETURN_IF_ERROR(c->postRecv(buf.data(), bytes, 1));
        LOOM_RETURN_IF_ERROR(spinUntil(c, c->sendsPosted(), c->recvsPosted()));
        LOOM_RETURN_IF_ERROR(c->postSend(buf.data(), bytes, 1));
      }
      LOOM_RETURN_IF_ERROR(spinUntil(c, c->sendsPosted(), c->recvsPosted()));
    }
    double rtt = (nowNs() - start) / 1e3 / perBatch;
    LOOM_ASSIGN_OR_RETURN(double share, pairShare(rank, c, cpu.share()));
    if (b > 0) rtts.push_back({rtt, share});  // batch 0 warms up
  }
  return rtts;
}

// Rank 0 streams `count` messages of `bytes` to rank 1 (and rank 1 to rank 0 if `bidir`);
// returns (GB/s per direction, CPU share).
Result<std::pair<double, double>> stream(int rank, Connection* c, size_t bytes, int window,
                                         uint64_t count, bool bidir) {
  std::vector<uint8_t> out(bytes), in(bytes);
  std::memset(out.data(), rank, bytes);
  uint8_t token = 0;
  // Start together: a zero-byte round trip.
  if (rank == 0) {
    LOOM_RETURN_IF_ERROR(c->postRecv(&token, 0, 9));
    LOOM_RETURN_IF_ERROR(spinUntil(c, c->sendsPosted(), c->recvsPosted()));
  } else {
    LOOM_RETURN_IF_ERROR(c->postSend(&token, 0, 9));
  }
  bool sends = rank == 0 || bidir, recvs = rank == 1 || bidir;
  uint64_t sendBase = c->sendsPosted(), recvBase = c->recvsPosted();
  uint64_t sendsPosted = sends ? 0 : count, recvsPosted = recvs ? 0 : count;
  CpuShare cpu;
  int64_t start = nowNs();
  while (sendsPosted < count || recvsPosted < count) {
    uint64_t w = static_cast<uint64_t>(window);
    while (sendsPosted < count && sendsPosted - (c->sendsCompleted() - sendBase) < w) {
      LOOM_RETURN_IF_ERROR(c->postSend(out.data(), bytes, 2));
      ++sendsPosted;
    }
    while (recvsPosted < count && recvsPosted - (c->recvsCompleted() - recvBase) < w) {
      LOOM_RETURN_IF_ERROR(c->postRecv(in.data(), bytes, 2));
      ++recvsPosted;
    }
    LOOM_RETURN_IF_ERROR(c->progress());
  }
  LOOM_RETURN_IF_ERROR(spinUntil(c, c->sendsPosted(), c->recvsPosted()));
  double seconds = (nowNs() - start) / 1e9;
  LOOM_ASSIGN_OR_RETURN(double share, pairShare(rank, c, cpu.share()));
  return std::make_pair(bytes * static_cast<double>(count) / seconds / 1e9, share);
}

Status runRank(int rank, Transport& t, const std::string& peerAddress, const Args& args,
               std::string* report) {
  if (args.pin) pin(rank);
  if (args.rt) setRealtime(true);
  LOOM_ASSIGN_OR_RETURN(std::unique_ptr<Connection> c, t.connect(1 - rank, 0, peerAddress));
  LOOM_RETURN_IF_ERROR(t.progress());
  LOOM_ASSIGN_OR_RETURN(auto rtts, pingPong(rank, c.get(), 8, 200, 1000));
  Stats rtt = summarize(rtts, false);
  char line[256];
  std::snprintf(line, sizeof(line),
                "%-8s %10s  one-way %6.3f us best, %6.3f us median  (%zu/%zu undisturbed)\n",
                "pingpong", "8 B", rtt.best / 2, rtt.median / 2, rtt.used, rtt.total);
  *report += line;
  for (size_t bytes : args.sizes) {
    // Many short runs (~128 MiB each); only those in which both ranks kept their cores count.
    uint64_t count = std::max<uint64_t>(4, (uint64_t{128} << 20) / bytes);
    LOOM_RETURN_IF_ERROR(stream(rank, c.get(), bytes, args.window, count, args.bidir).status());
    std::vector<std::pair<double, double>> runs;
    for (int rep = 0; rep < args.reps; ++rep) {
      LOOM_ASSIGN_OR_RETURN(auto run, stream(rank, c.get(), bytes, args.window, count, args.bidir));
      runs.push_back(run);
      if (args.rt) ::usleep(100000);
    }
    Stats bw = summarize(runs, true);
    std::snprintf(line, sizeof(line),
                  "%-8s %10zu  %6.2f GB/s best, %6.2f GB/s median  (%zu/%zu undisturbed)\n",
                  args.bidir ? "bidir" : "stream", bytes, bw.best, bw.median, bw.used, bw.total);
    *report += line;
  }
  return c->close(Deadline::afterMs(10000));
}

Result<std::unique_ptr<Transport>> makeTransport(int rank, uint64_t hash, const Args& args,
                                                 Config* config, TransportContext* ctx) {
  ctx->rank = rank;
  ctx->nranks = 2;
  ctx->commHash = hash;
  ctx->config = config;
  LOOM_ASSIGN_OR_RETURN(ctx->doorbell, Doorbell::create());
  return createShmTransport(*ctx, args.options);
}

// The hardware floor for the ping-pong: two processes bouncing one cache line each way with
// plain atomics (no transport), under the same pinning and scheduling.
void measureFloor(const Args& args) {
  constexpr int kBatches = 200, kPerBatch = 1000;
  auto* line = static_cast<std::atomic<uint64_t>*>(
      ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  std::atomic<uint64_t>* ping = &line[0];
  std::atomic<uint64_t>* pong = &line[16];  // another cache line
  uint64_t total = uint64_t{kBatches + 1} * kPerBatch;
  pid_t child = ::fork();
  if (child == 0) {
    if (args.pin) pin(1);
    if (args.rt) setRealtime(true);
    for (uint64_t i = 1; i <= total; ++i) {
      while (ping->load(std::memory_order_acquire) != i) {
      }
      pong->store(i, std::memory_order_release);
    }
    ::_exit(0);
  }
  if (args.pin) pin(0);
  if (args.rt) setRealtime(true);
  std::vector<std::pair<double, double>> rtts;
  for (uint64_t b = 0, i = 0; b <= kBatches; ++b) {
    CpuShare cpu;
    int64_t start = nowNs();
    for (int k = 0; k < kPerBatch; ++k) {
      ping->store(++i, std::memory_order_release);
      while (pong->load(std::memory_order_acquire) != i) {
      }
    }
    if (b > 0) rtts.push_back({(nowNs() - start) / 1e3 / kPerBatch, cpu.share()});
  }
  ::waitpid(child, nullptr, 0);
  if (args.rt) setRealtime(false);
  ::munmap(line, 4096);
  Stats floor = summarize(rtts, false);
  std::printf("%-8s %10s  one-way %6.3f us best, %6.3f us median  (raw cache line, no transport)\n",
              "floor", "8 B", floor.best / 2, floor.median / 2);
}

int runProcesses(const Args& args) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 1;
  pid_t child = ::fork();
  int rank = child == 0 ? 1 : 0;
  int fd = sv[rank];
  Config config;
  TransportContext ctx;
  auto t = makeTransport(rank, 0x5eed, args, &config, &ctx);
  if (!t.isOk()) {
    std::fprintf(stderr, "%s\n", t.status().toString().c_str());
    return 1;
  }
  char mine[128] = {}, theirs[128] = {};
  std::snprintf(mine, sizeof(mine), "%s", (*t)->localAddress().c_str());
  if (::write(fd, mine, sizeof(mine)) != sizeof(mine) ||
      ::recv(fd, theirs, sizeof(theirs), MSG_WAITALL) != sizeof(theirs))
    return 1;
  std::string report;
  Status s = runRank(rank, **t, theirs, args, &report);
  if (!s.isOk()) std::fprintf(stderr, "rank %d: %s\n", rank, s.toString().c_str());
  if (child == 0) ::_exit(s.isOk() ? 0 : 1);
  int status = 0;
  ::waitpid(child, &status, 0);
  std::printf("%s", report.c_str());
  return s.isOk() && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

int runThreads(const Args& args) {
  Config config[2];
  TransportContext ctx[2];
  std::unique_ptr<Transport> t[2];
  for (int r = 0; r < 2; ++r) {
    auto made = makeTransport(r, 0x5eed, args, &config[r], &ctx[r]);
    if (!made.isOk()) return 1;
    t[r] = std::move(*made);
  }
  std::string reports[2];
  Status results[2];
  std::thread other(
      [&] { results[1] = runRank(1, *t[1], t[0]->localAddress(), args, &reports[1]); });
  results[0] = runRank(0, *t[0], t[1]->localAddress(), args, &reports[0]);
  other.join();
  for (int r = 0; r < 2; ++r)
    if (!results[r].isOk()) std::fprintf(stderr, "rank %d: %s\n", r, results[r].toString().c_str());
  std::printf("%s", reports[0].c_str());
  return results[0].isOk() && results[1].isOk() ? 0 : 1;
}

std::vector<size_t> parseSizes(const char* text) {
  std::vector<size_t> sizes;
  for (const char* p = text; *p;) {
    sizes.push_back(std::strtoull(p, const_cast<char**>(&p), 10));
    if (*p == ',') ++p;
  }
  return sizes;
}

}  // namespace
}  // namespace loom::transport::shm

int main(int argc, char** argv) {
  using namespace loom::transport::shm;
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : "0";
    bool takesValue = true;
    if (a == "--slot-bytes") {
      args.options.geometry.slotBytes = static_cast<uint32_t>(std::atoi(value));
    } else if (a == "--slots") {
      args.options.geometry.slotCount = static_cast<uint32_t>(std::atoi(value));
    } else if (a == "--min-single") {
      args.options.directMinBytes = args.options.cmaMinBytes = std::strtoull(value, nullptr, 10);
    } else if (a == "--chunk") {
      args.options.copyChunkBytes = std::strtoull(value, nullptr, 10);
    } else if (a == "--window") {
      args.window = std::atoi(value);
    } else if (a == "--reps") {
      args.reps = std::max(1, std::atoi(value));
    } else if (a == "--sizes") {
      args.sizes = parseSizes(value);
    } else {
      takesValue = false;
      if (a == "--threads") {
        args.threads = true;
      } else if (a == "--fifo") {
        args.options.directCopy = args.options.cma = false;
      } else if (a == "--cma") {
        args.options.cma = true;
      } else if (a == "--no-pin") {
        args.pin = false;
      } else if (a == "--bidir") {
        args.bidir = true;
      } else if (a == "--rt") {
        args.rt = true;
      } else {
        std::fprintf(stderr, "unknown argument %s (see the header of shm_bench.cpp)\n", a.c_str());
        return 2;
      }
    }
    if (takesValue) ++i;
  }
  std::printf("# shm_bench: %s, %s, ring %u x %u B, single copy from %llu B, window %d%s%s\n",
              args.threads ? "threads" : "processes",
              args.threads ? (args.options.directCopy ? "direct copy" : "FIFO only")
                           : (args.options.cma ? "CMA" : "FIFO only"),
              args.options.geometry.slotCount, args.options.geometry.slotBytes,
              static_cast<unsigned long long>(args.threads ? args.options.directMinBytes
                                                           : args.options.cmaMinBytes),
              args.window, args.pin ? ", pinned" : "", args.bidir ? ", bidirectional" : "");
  if (args.rt) std::printf("# samples under SCHED_FIFO with pauses (--rt)\n");
  std::fflush(stdout);
  measureFloor(args);
  std::fflush(stdout);
  return args.threads ? runThreads(args) : runProcesses(args);
}
