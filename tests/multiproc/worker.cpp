// A rank process for the multi-process tests, started by launcher.h (or by loomrun/mpirun).
//
//   worker sweep            the full collective sweep and Send/Recv checks; exit 1 on mismatch
//   worker die <rank> <n>   everyone runs allreduces; rank <rank> kills itself (SIGKILL) before
//                           its n-th; the others must get an error (not hang): exit 0 if they
//                           do, and print the error
//   worker exit <rank> <n>  the same, but the victim calls _exit(0) without destroying
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "loom/loom.h"
#include "sweep.h"

namespace {

int sweep(loomComm_t comm) {
  std::vector<std::string> f = loom::test::runSweep(comm, loom::test::SweepOptions{});
  std::vector<std::string> p = loom::test::runPointToPoint(comm);
  f.insert(f.end(), p.begin(), p.end());
  for (const std::string& s : f)
    std::fprintf(stderr, "FAIL %s\n", s.c_str());
  return f.empty() ? 0 : 1;
}

int victimRun(loomComm_t comm, int victim, int before, bool kill) {
  int rank = 0;
  loomCommUserRank(comm, &rank);
  std::vector<float> buf(1 << 16, 1.0f);
  for (int i = 0;; ++i) {
    if (rank == victim && i == before) {
      std::fflush(stdout);
      if (kill) raise(SIGKILL);
      _exit(0);
    }
    auto t0 = std::chrono::steady_clock::now();
    loomResult_t r =
        loomAllReduce(buf.data(), buf.data(), buf.size(), loomFloat32, loomSum, comm, nullptr);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r != loomSuccess) {
      std::printf("rank %d: allreduce %d failed after %.3f s: %s: %s\n", rank, i, s,
                  loomGetErrorString(r), loomGetLastError(comm));
      loomResult_t async = loomSuccess;
      loomCommGetAsyncError(comm, &async);
      // The error is sticky: the next call fails at once with the same code.
      loomResult_t again =
          loomAllReduce(buf.data(), buf.data(), 1, loomFloat32, loomSum, comm, nullptr);
      std::printf("rank %d: async error %d, next call %d\n", rank, async, again);
      loomCommAbort(comm);
      return (async == r && again == r) ? 0 : 4;
    }
    if (i > before + 1000) {
      std::printf("rank %d: no error after the victim died\n", rank);
      return 3;
    }
    for (float& x : buf)
      x = 1.0f;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s sweep | die <rank> <n> | exit <rank> <n>\n", argv[0]);
    return 2;
  }
  loomComm_t comm;
  loomResult_t r = loomCommInitEnv(&comm, nullptr);
  if (r != loomSuccess) {
    std::fprintf(stderr, "init failed: %s\n", loomGetLastError(nullptr));
    return 2;
  }
  std::string mode = argv[1];
  int rc = 2;
  if (mode == "sweep") {
    rc = sweep(comm);
  } else if ((mode == "die" || mode == "exit") && argc == 4) {
    return victimRun(comm, std::atoi(argv[2]), std::atoi(argv[3]), mode == "die");
  }
  if (loomCommDestroy(comm) != loomSuccess && rc == 0) rc = 5;
  return rc;
}
