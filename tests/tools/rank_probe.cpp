// rank_probe - a stand-in rank for loomrun's tests. It reads its rank from the environment
// loomrun sets and then behaves as the mode asks:
//   env                     print "rank=R world=W local=L/LS idlen=N ifname=X commid=Y"
//   exit R CODE             rank R exits with CODE after 100 ms; the others sleep (<= 60 s)
//   crash R                 rank R raises SIGSEGV after 200 ms; the others sleep (<= 60 s)
//   ignore-term             every rank ignores SIGTERM and sleeps (<= 60 s)
//   grandchild DIR R CODE   every rank forks a child that sleeps 60 s, writes both pids to
//                           DIR/rank<R>.pids, then rank R exits with CODE; the others sleep
//   ready DIR               writes DIR/ready<R> with its pid, then sleeps (<= 60 s)
//   allreduce               a real loom job: loomCommInitEnv, sum of ranks, check, exit 0/1
//   print                   prints "hello from R" and a partial line "tail R" without newline
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "launch/process_env.h"
#include "loom/loom.h"

namespace {

int envInt(const char* name, int fallback) {
  auto v = loom::launch::environmentValue(name);
  return v ? std::atoi(v->c_str()) : fallback;
}

[[noreturn]] void sleepThenExit() {
  for (int i = 0; i < 600; ++i)
    usleep(100 * 1000);
  std::exit(0);
}

void writeFile(const std::string& path, const std::string& text) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return;
  std::fputs(text.c_str(), f);
  std::fclose(f);
}

int allreduce() {
  loomComm_t comm = nullptr;
  if (loomCommInitEnv(&comm, nullptr) != loomSuccess) {
    std::fprintf(stderr, "init failed: %s\n", loomGetLastError(nullptr));
    return 1;
  }
  int rank = 0, n = 0;
  loomCommUserRank(comm, &rank);
  loomCommCount(comm, &n);
  int64_t v = rank + 1;
  if (loomAllReduce(&v, &v, 1, loomInt64, loomSum, comm, nullptr) != loomSuccess) return 1;
  loomCommDestroy(comm);
  const bool good = v == static_cast<int64_t>(n) * (n + 1) / 2;
  std::printf("rank %d of %d: sum %lld %s\n", rank, n, static_cast<long long>(v),
              good ? "ok" : "WRONG");
  return good ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const std::string mode = argv[1];
  const int rank = envInt("LOOM_RANK", -1);
  if (mode == "env") {
    const std::string id = loom::launch::environmentValue("LOOM_UNIQUE_ID").value_or("");
    std::printf("rank=%d world=%d local=%d/%d idlen=%zu id=%s ifname=%s commid=%s\n", rank,
                envInt("LOOM_WORLD_SIZE", -1), envInt("LOOM_LOCAL_RANK", -1),
                envInt("LOOM_LOCAL_SIZE", -1), id.size(), id.c_str(),
                loom::launch::environmentValue("LOOM_SOCKET_IFNAME").value_or("").c_str(),
                loom::launch::environmentValue("LOOM_COMM_ID").value_or("").c_str());
    return 0;
  }
  if (mode == "exit" && argc >= 4) {
    if (rank == std::atoi(argv[2])) {
      usleep(100 * 1000);
      return std::atoi(argv[3]);
    }
    sleepThenExit();
  }
  if (mode == "crash" && argc >= 3) {
    if (rank == std::atoi(argv[2])) {
      usleep(200 * 1000);
      raise(SIGSEGV);
    }
    sleepThenExit();
  }
  if (mode == "ignore-term") {
    signal(SIGTERM, SIG_IGN);
    sleepThenExit();
  }
  if (mode == "grandchild" && argc >= 5) {
    const pid_t child = fork();
    if (child == 0) sleepThenExit();
    writeFile(std::string(argv[2]) + "/rank" + std::to_string(rank) + ".pids",
              std::to_string(getpid()) + " " + std::to_string(child) + "\n");
    if (rank == std::atoi(argv[3])) {
      usleep(300 * 1000);
      return std::atoi(argv[4]);
    }
    sleepThenExit();
  }
  if (mode == "ready" && argc >= 3) {
    writeFile(std::string(argv[2]) + "/ready" + std::to_string(rank), std::to_string(getpid()));
    sleepThenExit();
  }
  if (mode == "allreduce") return allreduce();
  if (mode == "print") {
    std::printf("hello from %d\n", rank);
    std::printf("tail %d", rank);
    return 0;
  }
  return 2;
}
