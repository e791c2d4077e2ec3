// loom-perf - nccl-tests-compatible collective benchmark for loom (DESIGN.md section 7).
//
// How the ranks come to be:
//   --plot          draw result files and exit (no ranks);
//   --calibrate     run child benchmarks and write a cost-model profile (calibrate.h);
//   -np N           start N local ranks of this program (the launcher of loomrun) and wait;
//   launcher env    a rank started by loomrun, mpirun, srun or torchrun: loomCommInitEnv; with
//                   -t T, each process then runs T ranks as threads (rank 0's unique id is
//                   broadcast over the launcher communicator, as nccl-tests does over MPI);
//   otherwise       one process, -t T ranks as threads (loomCommInitAll).
// It links only the public API (the shared library `loom`), so another build of the library
// can be swapped in.
#include <stdlib.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "bench.h"
#include "calibrate.h"
#include "launch/launch.h"
#include "launch/process_env.h"
#include "loom/loom.h"
#include "options.h"
#include "plot.h"

namespace {

using loom::perf::Options;

// Whether a launcher started this process (the variables src/bootstrap/launcher.h reads).
bool startedByLauncher() {
  using loom::launch::environmentValue;
  if (environmentValue("LOOM_RANK") || environmentValue("OMPI_COMM_WORLD_RANK") ||
      environmentValue("PMI_RANK"))
    return true;
  if (environmentValue("SLURM_PROCID") && environmentValue("SLURM_STEP_ID")) return true;
  return environmentValue("RANK") && environmentValue("WORLD_SIZE");
}

std::string selfPath(const char* argv0) {
  char buf[PATH_MAX] = {};
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string(argv0);
}

int fail(const char* what, loomResult_t r) {
  std::fprintf(stderr, "loom-perf: %s failed: %s: %s\n", what, loomGetErrorString(r),
               loomGetLastError(nullptr));
  return 1;
}

// Runs one rank per communicator, each on its own thread (the first on this one).
int runRanks(const Options& options, std::vector<loomComm_t>& comms, int firstRank, int nranks,
             int nprocs, const std::string& algo) {
  std::vector<int> status(comms.size(), 1);
  auto body = [&](size_t i) {
    loom::perf::RankSetup setup;
    setup.rank = firstRank + static_cast<int>(i);
    setup.nranks = nranks;
    setup.nprocs = nprocs;
    setup.transport = options.transport.empty()
                          ? loom::launch::environmentValue("LOOM_TRANSPORT").value_or("auto")
                          : options.transport;
    setup.algo = algo;
    status[i] = loom::perf::runRank(options, setup, &comms[i]);
  };
  std::vector<std::thread> threads;
  for (size_t i = 1; i < comms.size(); ++i)
    threads.emplace_back(body, i);
  body(0);
  for (std::thread& t : threads)
    t.join();
  int result = 0;
  for (size_t i = 0; i < comms.size(); ++i) {
    if (comms[i] != nullptr && loomCommDestroy(comms[i]) != loomSuccess) result = 1;
    result = std::max(result, status[i]);
  }
  return result;
}

// Ranks of a launcher-started process: the launcher's communicator, or T thread ranks per
// process joined through a unique id that process 0 broadcasts.
int runLaunched(const Options& options, loomConfig_t* config, const std::string& algo) {
  loomComm_t envComm = nullptr;
  loomResult_t r = loomCommInitEnv(&envComm, config);
  if (r != loomSuccess) return fail("loomCommInitEnv", r);
  int proc = 0, nprocs = 1;
  loomCommUserRank(envComm, &proc);
  loomCommCount(envComm, &nprocs);
  const int t = options.nThreads;
  if (t == 1) {
    std::vector<loomComm_t> comms{envComm};
    return runRanks(options, comms, proc, nprocs, nprocs, algo);
  }
  loomUniqueId id{};
  if (proc == 0 && (r = loomGetUniqueId(&id)) != loomSuccess) return fail("loomGetUniqueId", r);
  r = loomBroadcast(&id, &id, sizeof(id), loomUint8, 0, envComm, nullptr);
  if (r != loomSuccess) return fail("broadcast of the unique id", r);
  std::vector<loomComm_t> comms(static_cast<size_t>(t), nullptr);
  std::vector<loomResult_t> results(static_cast<size_t>(t), loomSuccess);
  std::vector<std::thread> threads;
  for (int i = 0; i < t; ++i) {
    threads.emplace_back([&, i] {
      results[i] = loomCommInitRankConfig(&comms[i], nprocs * t, id, proc * t + i, config);
    });
  }
  for (std::thread& th : threads)
    th.join();
  for (loomResult_t res : results)
    if (res != loomSuccess) return fail("loomCommInitRank", res);
  const int status = runRanks(options, comms, proc * t, nprocs * t, nprocs, algo);
  loomCommDestroy(envComm);
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  setlinebuf(stdout);
  Options options;
  std::string error;
  switch (loom::perf::parseOptions(argc, argv, &options, &error)) {
    case loom::perf::ParseResult::kHelp:
      std::fputs(loom::perf::usageText().c_str(), stdout);
      return 0;
    case loom::perf::ParseResult::kError:
      std::fprintf(stderr, "loom-perf: %s\n\n%s", error.c_str(), loom::perf::usageText().c_str());
      return 2;
    case loom::perf::ParseResult::kRun:
      break;
  }
  if (!options.plotOutput.empty())
    return loom::perf::plotFiles(options.plotOutput, options.plotInputs);
  if (!options.calibrateOutput.empty())
    return loom::perf::calibrate(selfPath(argv[0]), options.calibrateOutput, options.tuneRanks,
                                 options.tuneMaxBytes, options.tuneRuns);

  if (options.np > 0) {
    // Be the launcher: the ranks are this program without -np (before any loom call here).
    loom::launch::JobSpec spec;
    spec.command = loom::perf::argsWithoutNp(argc, argv);
    spec.command[0] = selfPath(argv[0]);
    spec.localRanks = options.np;
    spec.name = "loom-perf";
    return loom::launch::runJob(spec);
  }

  // LOOM_ALGO must be in the environment before the first loom call (Config snapshot).
  std::string algo = loom::perf::algoOverride(options);
  if (!algo.empty())
    setenv("LOOM_ALGO", algo.c_str(), 1);
  else
    algo = loom::launch::environmentValue("LOOM_ALGO").value_or("");
  loomConfig_t config = LOOM_CONFIG_INITIALIZER;
  if (!options.transport.empty()) config.transport = options.transport.c_str();
  if (options.timeoutSec > 0) config.timeoutMs = options.timeoutSec * 1000;

  if (startedByLauncher()) return runLaunched(options, &config, algo);
  std::vector<loomComm_t> comms(static_cast<size_t>(options.nThreads), nullptr);
  const loomResult_t r = loomCommInitAll(comms.data(), options.nThreads, nullptr, &config);
  if (r != loomSuccess) return fail("loomCommInitAll", r);
  return runRanks(options, comms, 0, options.nThreads, 1, algo);
}
