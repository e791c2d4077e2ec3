// A rank process for the multi-process tests, started by launcher.h (or by loomrun/mpirun).
//
//   worker sweep            the full collective sweep and Send/Recv checks; exit 1 on mismatch
//   worker die <rank> <n>   everyone runs allreduces; rank <rank> kills itself (SIGKILL) before
//                           its n-th; the others must get an error (not hang): exit 0 if they
//                           do, and print the error
//   worker exit <rank> <n>  the same, but the victim calls _exit(0) without destroying
//   worker abort <rank> <n> the same, but the victim aborts its communicator and lives on 3 s
//   worker allreduce <n>    n allreduces; exit 0 when they all give exact results
//   worker mismatch         rank 0 reduces 100 floats, the others 101; exit 0 when it fails
//   worker leave <n>        n one-float Broadcasts from rank 0, which destroys its communicator
//                           and exits at once; the others make their last call 0.3 s late,
//                           after it left: it must still deliver (exit 0 when all are exact)
//   worker repeat <n>       n rounds of small AllReduce (twice the same call, new inputs),
//                           AllGather and Broadcast calls (the host window's fast lane reuses
//                           one execution call after call), each checked, then the counters; then
//                           rank 1 stops calling and the others' next call must time out naming it,
//                           and stay failed. Exit 0 when all of that holds
//   worker faults <plan> <n>  n allreduces through the fault-injecting transport with <plan>
//                           (transports/testing/fault_plan.h); exit 0 when they all give exact
//                           results, or when a failure is reported and then sticky
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "base/config.h"
#include "base/cuda.h"
#include "loom/loom.h"
#include "runtime/device_ipc.h"
#include "runtime/testing.h"
#include "sweep.h"
#include "transports/testing/fault_transport.h"

namespace {

int sweep(loomComm_t comm) {
  std::vector<std::string> f = loom::test::runSweep(comm, loom::test::SweepOptions{});
  std::vector<std::string> p = loom::test::runPointToPoint(comm);
  f.insert(f.end(), p.begin(), p.end());
  for (const std::string& s : f)
    std::fprintf(stderr, "FAIL %s\n", s.c_str());
  return f.empty() ? 0 : 1;
}

// The sweep on device buffers (the GPU path): every process uses device 0, several ranks on
// one GPU. Exit 77 (skipped) without a usable GPU.
int gpuSweep(loomComm_t comm) {
  void* stream = nullptr;
  if (!loom::cuda::available() || !loom::cuda::streamCreate(&stream).isOk()) return 77;
  loom::test::SweepOptions o;
  o.counts = {0, 1, 7, 1000, 70000};
  o.stream = stream;
  std::vector<std::string> f = loom::test::runSweep(comm, o);
  std::vector<std::string> p = loom::test::runPointToPoint(comm, stream);
  f.insert(f.end(), p.begin(), p.end());
  loom::test::releaseDeviceMirrors();  // this process's only rank is done
  loom::cuda::streamDestroy(stream);
  // With LOOM_CUDA_IPC=1 the covered calls must have gone through the mapped windows.
  const loom::Config& config = loom::Config::processDefaults();
  if (config.cudaIpc && !config.cudaDirect) {
    if (loom::runtime::DeviceIpc::callsHandled() == 0)
      f.push_back("LOOM_CUDA_IPC=1, yet no call went through the IPC windows");
    if (loom::runtime::DeviceIpc::callsStaged() != 0)
      f.push_back(std::to_string(loom::runtime::DeviceIpc::callsStaged()) +
                  " calls fell back to host memory: the windows were not mapped");
  }
  for (const std::string& s : f)
    std::fprintf(stderr, "FAIL %s\n", s.c_str());
  return f.empty() ? 0 : 1;
}

enum class Victim { kKill, kExit, kAbort };

int victimRun(loomComm_t comm, int victim, int before, Victim how) {
  int rank = 0;
  loomCommUserRank(comm, &rank);
  std::vector<float> buf(1 << 16, 1.0f);
  for (int i = 0;; ++i) {
    if (rank == victim && i == before) {
      std::fflush(stdout);
      if (how == Victim::kKill) raise(SIGKILL);
      if (how == Victim::kAbort) {  // aborts and stays alive for a while: only abort tells
        loomCommAbort(comm);
        sleep(3);
      }
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

bool installFaults(const char* text) {
  auto plan = loom::transport::fault::FaultPlan::parse(text);
  if (!plan.isOk()) {
    std::fprintf(stderr, "%s\n", plan.status().toString().c_str());
    return false;
  }
  loom::runtime::setTransportDecoratorForTesting(
      [p = std::move(plan).value()](std::unique_ptr<loom::transport::Transport> inner,
                                    const loom::transport::TransportContext& context) {
        return loom::transport::fault::wrapWithFaults(std::move(inner), context, p);
      });
  return true;
}

int faultyRun(loomComm_t comm, int iterations) {
  int rank = 0, n = 0;
  loomCommUserRank(comm, &rank);
  loomCommCount(comm, &n);
  std::vector<float> buf(1 << 15);
  for (int i = 0; i < iterations; ++i) {
    for (float& x : buf)
      x = static_cast<float>(rank + 1);
    auto t0 = std::chrono::steady_clock::now();
    loomResult_t r =
        loomAllReduce(buf.data(), buf.data(), buf.size(), loomFloat32, loomSum, comm, nullptr);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r != loomSuccess) {
      std::printf("rank %d: allreduce %d failed after %.3f s: %s: %s\n", rank, i, s,
                  loomGetErrorString(r), loomGetLastError(comm));
      loomResult_t again =
          loomAllReduce(buf.data(), buf.data(), 1, loomFloat32, loomSum, comm, nullptr);
      loomCommAbort(comm);
      return again == r ? 0 : 4;
    }
    for (float x : buf)
      if (x != static_cast<float>(n * (n + 1) / 2)) {
        std::printf("rank %d: allreduce %d gave %g\n", rank, i, static_cast<double>(x));
        return 1;
      }
  }
  std::printf("rank %d: all %d allreduces exact\n", rank, iterations);
  loomCommDestroy(comm);
  return 0;
}

// Rank 0 reduces 100 floats, the others 101: every rank must fail (no hang, no silent sum).
int mismatchRun(loomComm_t comm) {
  int rank = 0;
  loomCommUserRank(comm, &rank);
  std::vector<float> buf(101, 1.0f);
  loomResult_t r = loomAllReduce(buf.data(), buf.data(), rank == 0 ? 100 : 101, loomFloat32,
                                 loomSum, comm, nullptr);
  std::printf("rank %d: mismatched allreduce: %s: %s\n", rank, loomGetErrorString(r),
              r == loomSuccess ? "" : loomGetLastError(comm));
  loomCommAbort(comm);
  return r == loomSuccess ? 1 : 0;
}

// worker leave <n>: see the top of the file.
int leaveRun(loomComm_t comm, int calls) {
  int rank = 0;
  loomCommUserRank(comm, &rank);
  for (int i = 0; i < calls; ++i) {
    if (rank != 0 && i == calls - 1) usleep(300000);
    float x = rank == 0 ? static_cast<float>(i) : -1.0f;
    if (loomBroadcast(&x, &x, 1, loomFloat32, 0, comm, nullptr) != loomSuccess) {
      std::printf("rank %d: broadcast %d failed: %s\n", rank, i, loomGetLastError(comm));
      return 1;
    }
    if (x != static_cast<float>(i)) {
      std::printf("rank %d: broadcast %d gave %g\n", rank, i, static_cast<double>(x));
      return 1;
    }
  }
  std::printf("rank %d: %d broadcasts exact\n", rank, calls);
  if (loomCommDestroy(comm) != loomSuccess) {
    std::printf("rank %d: destroy failed\n", rank);
    return 1;
  }
  return 0;
}

// worker repeat <n>: see the top of the file.
int repeatRun(loomComm_t comm, int rounds) {
  int rank = 0, n = 0;
  loomCommUserRank(comm, &rank);
  loomCommCount(comm, &n);
  std::vector<float> in(4), out(4 * static_cast<size_t>(n));
  auto fail = [&](const std::string& what) {
    std::printf("rank %d: %s\n", rank, what.c_str());
    loomCommAbort(comm);
    return 1;
  };
  for (int i = 0; i < rounds; ++i) {
    const size_t count = 1 + static_cast<size_t>(i % 4);  // the counts alternate
    // Twice the same call (the lane's "same call again"), with new inputs the second time.
    for (int again = 0; again < 2; ++again) {
      for (size_t k = 0; k < count; ++k)
        in[k] = static_cast<float>(rank + i + k + again);
      if (loomAllReduce(in.data(), out.data(), count, loomFloat32, loomSum, comm, nullptr) !=
          loomSuccess)
        return fail(std::string("allreduce failed: ") + loomGetLastError(comm));
      for (size_t k = 0; k < count; ++k)
        if (out[k] != static_cast<float>(n * (n - 1) / 2 + n * (i + static_cast<int>(k) + again)))
          return fail("allreduce " + std::to_string(i) + " gave " + std::to_string(out[k]));
    }
    for (size_t k = 0; k < count; ++k)
      in[k] = static_cast<float>(rank + i + k);
    if (loomAllGather(in.data(), out.data(), count, loomFloat32, comm, nullptr) != loomSuccess)
      return fail(std::string("allgather failed: ") + loomGetLastError(comm));
    for (int q = 0; q < n; ++q)
      for (size_t k = 0; k < count; ++k)
        if (out[q * count + k] != static_cast<float>(q + i + k))
          return fail("allgather " + std::to_string(i) + " is wrong");
    const int root = i % n;
    for (size_t k = 0; k < count; ++k)
      out[k] = rank == root ? static_cast<float>(100 * i + k) : -1.0f;
    if (loomBroadcast(out.data(), out.data(), count, loomFloat32, root, comm, nullptr) !=
        loomSuccess)
      return fail(std::string("broadcast failed: ") + loomGetLastError(comm));
    for (size_t k = 0; k < count; ++k)
      if (out[k] != static_cast<float>(100 * i + k))
        return fail("broadcast " + std::to_string(i) + " is wrong");
  }
  loomCounters_t c{};
  if (loomCommGetCounters(comm, &c) != loomSuccess) return fail("no counters");
  const uint64_t r = static_cast<uint64_t>(rounds);
  if (c.calls[loomCollAllReduce] != 2 * r || c.calls[loomCollAllGather] != r ||
      c.calls[loomCollBroadcast] != r)
    return fail("counters: " + std::to_string(c.calls[loomCollAllReduce]) + " allreduces, " +
                std::to_string(c.calls[loomCollAllGather]) + " allgathers, " +
                std::to_string(c.calls[loomCollBroadcast]) + " broadcasts, not " +
                std::to_string(2 * rounds) + ", " + std::to_string(rounds) + " and " +
                std::to_string(rounds));
  // One-shot AllGather: every rank reads n - 1 blocks of count floats from the others.
  uint64_t gathered = 0;
  for (int i = 0; i < rounds; ++i)
    gathered += static_cast<uint64_t>(n - 1) * (1 + i % 4) * sizeof(float);
  if (c.bytesRecv[loomCollAllGather] != gathered)
    return fail("counters: allgather received " + std::to_string(c.bytesRecv[loomCollAllGather]) +
                " bytes, not " + std::to_string(gathered));
  std::printf("rank %d: %d rounds exact, counters right\n", rank, rounds);
  std::fflush(stdout);
  if (rank == 1) {  // stops calling; the others time out in the window, then it leaves
    sleep(4);
    loomCommAbort(comm);
    return 0;
  }
  auto t0 = std::chrono::steady_clock::now();
  loomResult_t res = loomAllReduce(in.data(), out.data(), 1, loomFloat32, loomSum, comm, nullptr);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string err = res == loomSuccess ? "" : loomGetLastError(comm);
  std::printf("rank %d: stalled allreduce after %.2f s: %s: %s\n", rank, s, loomGetErrorString(res),
              err.c_str());
  loomResult_t again = loomAllReduce(in.data(), out.data(), 1, loomFloat32, loomSum, comm, nullptr);
  loomCommAbort(comm);
  if (res == loomSuccess || again != res) return 1;
  return err.find("timed out") != std::string::npos ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s sweep | die <rank> <n> | exit <rank> <n>\n", argv[0]);
    return 2;
  }
  if (std::string(argv[1]) == "faults" && (argc != 4 || !installFaults(argv[2]))) return 2;
  if (std::getenv("LOOM_TEST_FAKE_GPU")) loom::cuda::testing::useFakeDevice();
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
  } else if (mode == "gpu-sweep") {
    rc = gpuSweep(comm);
  } else if ((mode == "die" || mode == "exit" || mode == "abort") && argc == 4) {
    const Victim how = mode == "die"    ? Victim::kKill
                       : mode == "exit" ? Victim::kExit
                                        : Victim::kAbort;
    return victimRun(comm, std::atoi(argv[2]), std::atoi(argv[3]), how);
  } else if (mode == "faults") {
    return faultyRun(comm, std::atoi(argv[3]));
  } else if (mode == "mismatch") {
    return mismatchRun(comm);
  } else if (mode == "leave" && argc == 3) {
    return leaveRun(comm, std::atoi(argv[2]));
  } else if (mode == "repeat" && argc == 3) {
    return repeatRun(comm, std::atoi(argv[2]));
  } else if (mode == "allreduce" && argc == 3) {
    return faultyRun(comm, std::atoi(argv[2]));
  }
  if (loomCommDestroy(comm) != loomSuccess && rc == 0) rc = 5;
  return rc;
}
