// One rank's benchmark: for every requested collective, type, op and root, nccl-tests'
// TimeTest: warm-up at the largest and smallest size, then per size an out-of-place and an
// in-place half, each timed over -n iterations (after a barrier) and then checked (-c).
//
// Timing: a rank's time per call is (loop time) / (iters * agg); the row's time combines the
// ranks' times per -a (nccl-tests: mean by default). With --budget the iterations adapt per size
// as the peer benchmarks do (shared/peers/mpi_allreduce_bench.c): iters = clamp(1 GiB / size,
// 10, 1000), warm-up = clamp(iters / 10, 2, 50), both cut so one size takes about `budget`
// seconds; the peer format always reports the maximum over ranks, like the peers.
//
// Checking: inputs from values.h, outputs compared exactly (check.h); #wrong is summed over
// ranks, and "Out of bounds values" counts (rank, row) pairs with any wrong element.
//
// Thread-safety: one call of runRank per rank thread; ranks share nothing but stdout, which
// only global rank 0 writes.
#pragma once

#include <string>

#include "loom/loom.h"
#include "options.h"

namespace loom::perf {

struct RankSetup {
  int rank = 0;           // global rank
  int nranks = 1;         // global size
  int nprocs = 1;         // processes in the job (for the header)
  std::string transport;  // for the header and JSON
  std::string algo;       // LOOM_ALGO in effect ("" = default)
};

// Runs the benchmark on *comm. Returns 0, or 1 when a value was wrong or a loom call failed.
// After a failed call the communicator is aborted (so that peers waiting on this rank fail
// instead of hanging) and *comm is set to nullptr.
int runRank(const Options& options, const RankSetup& setup, loomComm_t* comm);

}  // namespace loom::perf
