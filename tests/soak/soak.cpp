// Soak: mixed collectives of random sizes for a bounded time, every result checked exactly.
//
//   loomrun -np 4 loom_soak [--seconds S] [--seed N]      (make soak: 120 s; ctest: 20 s)
//
// Every rank draws the same pseudo-random sequence (same seed), so they agree on the next
// operation, its size, datatype, operator and root without talking. Inputs are small integers
// (exact in float32), so expected results are computed locally and compared bit for bit. Rank
// 0 decides when time is up and broadcasts it, so every rank stops after the same operation.
// At the end each rank compares its open descriptors and resident memory with what it had
// after the first 50 operations; a growth of descriptors fails the run.
// Exit: 0 clean; 1 a wrong value; 2 a loom error; 3 a leak.
#include <dirent.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "loom/loom.h"

namespace {

int gRank = 0, gN = 1;

int openDescriptors() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d))
      n += e->d_name[0] != '.';
    closedir(d);
  }
  return n - 1;
}

long residentKiB() {
  long kib = -1;
  if (FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof(line), f))
      if (std::strncmp(line, "VmRSS:", 6) == 0) kib = std::strtol(line + 6, nullptr, 10);
    std::fclose(f);
  }
  return kib;
}

// Rank r's input element i in operation `it`: a small integer.
float in(int r, size_t i, uint64_t it) {
  return static_cast<float>((r * 7 + i * 3 + it) % 61);
}

struct Op {
  int kind;  // 0 allreduce sum, 1 allreduce max, 2 allgather, 3 reducescatter, 4 broadcast,
             // 5 reduce, 6 alltoall, 7 send/recv ring, 8 barrier
  size_t count;
  int root;
};

Op draw(std::mt19937_64& rng) {
  Op op;
  op.kind = static_cast<int>(rng() % 9);
  // Log-uniform sizes from 0 to 256 Ki elements: many small, some large (spanning slices).
  const int bits = static_cast<int>(rng() % 19);
  op.count = bits == 0 ? 0 : (rng() % (size_t{1} << bits));
  op.root = static_cast<int>(rng() % static_cast<uint64_t>(gN));
  return op;
}

int fail(const char* what, uint64_t it, loomResult_t r, loomComm_t comm) {
  std::fprintf(stderr, "rank %d: op %llu (%s): %s: %s\n", gRank,
               static_cast<unsigned long long>(it), what, loomGetErrorString(r),
               loomGetLastError(comm));
  return 2;
}

int wrong(const char* what, uint64_t it, size_t i, float got, float want) {
  std::fprintf(stderr, "rank %d: op %llu (%s): element %zu is %g, expected %g\n", gRank,
               static_cast<unsigned long long>(it), what, i, static_cast<double>(got),
               static_cast<double>(want));
  return 1;
}

int runOne(loomComm_t comm, const Op& op, uint64_t it) {
  static const char* kNames[] = {"allreduce sum", "allreduce max", "allgather",
                                 "reducescatter", "broadcast",     "reduce",
                                 "alltoall",      "sendrecv",      "barrier"};
  const char* name = kNames[op.kind];
  const size_t n = op.count, N = static_cast<size_t>(gN);
  std::vector<float> send, recv;
  loomResult_t r = loomSuccess;
  switch (op.kind) {
    case 0:
    case 1: {
      send.resize(n);
      for (size_t i = 0; i < n; ++i)
        send[i] = in(gRank, i, it);
      recv.resize(n);
      r = loomAllReduce(send.data(), recv.data(), n, loomFloat32, op.kind == 0 ? loomSum : loomMax,
                        comm, nullptr);
      if (r != loomSuccess) return fail(name, it, r, comm);
      for (size_t i = 0; i < n; ++i) {
        float want = op.kind == 0 ? 0.f : -1.f;
        for (int q = 0; q < gN; ++q)
          want = op.kind == 0 ? want + in(q, i, it) : std::max(want, in(q, i, it));
        if (recv[i] != want) return wrong(name, it, i, recv[i], want);
      }
      return 0;
    }
    case 2:
    case 6: {
      const size_t total = n * N;
      send.resize(op.kind == 2 ? n : total);
      for (size_t i = 0; i < send.size(); ++i)
        send[i] = in(gRank, i, it);
      recv.resize(total);
      r = op.kind == 2 ? loomAllGather(send.data(), recv.data(), n, loomFloat32, comm, nullptr)
                       : loomAllToAll(send.data(), recv.data(), n, loomFloat32, comm, nullptr);
      if (r != loomSuccess) return fail(name, it, r, comm);
      for (size_t q = 0; q < N; ++q)
        for (size_t i = 0; i < n; ++i) {
          const float want = op.kind == 2 ? in(static_cast<int>(q), i, it)
                                          : in(static_cast<int>(q), gRank * n + i, it);
          if (recv[q * n + i] != want) return wrong(name, it, q * n + i, recv[q * n + i], want);
        }
      return 0;
    }
    case 3: {
      send.resize(n * N);
      for (size_t i = 0; i < send.size(); ++i)
        send[i] = in(gRank, i, it);
      recv.resize(n);
      r = loomReduceScatter(send.data(), recv.data(), n, loomFloat32, loomSum, comm, nullptr);
      if (r != loomSuccess) return fail(name, it, r, comm);
      for (size_t i = 0; i < n; ++i) {
        float want = 0;
        for (int q = 0; q < gN; ++q)
          want += in(q, gRank * n + i, it);
        if (recv[i] != want) return wrong(name, it, i, recv[i], want);
      }
      return 0;
    }
    case 4:
    case 5: {
      send.resize(n);
      for (size_t i = 0; i < n; ++i)
        send[i] = in(gRank, i, it);
      recv.assign(n, -1.f);
      r = op.kind == 4
              ? loomBroadcast(send.data(), recv.data(), n, loomFloat32, op.root, comm, nullptr)
              : loomReduce(send.data(), recv.data(), n, loomFloat32, loomSum, op.root, comm,
                           nullptr);
      if (r != loomSuccess) return fail(name, it, r, comm);
      if (op.kind == 5 && gRank != op.root) return 0;
      for (size_t i = 0; i < n; ++i) {
        float want = 0;
        if (op.kind == 4) want = in(op.root, i, it);
        for (int q = 0; op.kind == 5 && q < gN; ++q)
          want += in(q, i, it);
        if (recv[i] != want) return wrong(name, it, i, recv[i], want);
      }
      return 0;
    }
    case 7: {
      send.resize(n);
      for (size_t i = 0; i < n; ++i)
        send[i] = in(gRank, i, it);
      recv.assign(n, -1.f);
      const int next = (gRank + 1) % gN, prev = (gRank + gN - 1) % gN;
      loomGroupStart();
      loomSend(send.data(), n, loomFloat32, next, comm, nullptr);
      loomRecv(recv.data(), n, loomFloat32, prev, comm, nullptr);
      r = loomGroupEnd();
      if (r != loomSuccess) return fail(name, it, r, comm);
      for (size_t i = 0; i < n; ++i)
        if (recv[i] != in(prev, i, it)) return wrong(name, it, i, recv[i], in(prev, i, it));
      return 0;
    }
    default:
      r = loomBarrier(comm, nullptr);
      return r == loomSuccess ? 0 : fail(name, it, r, comm);
  }
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 20;
  uint64_t seed = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--seconds") seconds = std::atof(argv[i + 1]);
    if (std::string(argv[i]) == "--seed") seed = std::strtoull(argv[i + 1], nullptr, 10);
  }
  loomComm_t comm;
  if (loomCommInitEnv(&comm, nullptr) != loomSuccess) {
    std::fprintf(stderr, "init failed: %s\n", loomGetLastError(nullptr));
    return 2;
  }
  loomCommUserRank(comm, &gRank);
  loomCommCount(comm, &gN);
  std::mt19937_64 rng(seed);
  const auto t0 = std::chrono::steady_clock::now();
  int fds0 = 0;
  long rss0 = 0;
  uint64_t it = 0;
  for (int go = 1; go; ++it) {
    int rc = runOne(comm, draw(rng), it);
    if (rc != 0) return rc;
    if (it == 50) {
      fds0 = openDescriptors();
      rss0 = residentKiB();
    }
    if (it % 16 == 15) {
      go = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < seconds;
      if (loomBroadcast(&go, &go, 1, loomInt32, 0, comm, nullptr) != loomSuccess)
        return fail("stop flag", it, loomRemoteError, comm);
    }
  }
  const int fds1 = openDescriptors();
  const long rss1 = residentKiB();
  std::printf("rank %d: %llu operations in %.1f s, all exact; fds %d -> %d, RSS %ld -> %ld KiB\n",
              gRank, static_cast<unsigned long long>(it),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), fds0,
              fds1, rss0, rss1);
  if (loomCommDestroy(comm) != loomSuccess) return 2;
  return it > 50 && fds1 > fds0 ? 3 : 0;
}
