// loom-perf --calibrate FILE: measures this machine's transports and writes the cost-model
// profile the planner loads with LOOM_TUNING_FILE (format: algorithms/cost_model.h).
//
// Each measurement is a child run of loom-perf itself with --json, so it uses exactly the
// paths a benchmark does:
//   intra.alpha_us / intra.gbps  sendrecv on 2 processes over shm: time at 8 B is α; the
//                                slope between 1 MiB and 16 MiB is the bandwidth
//   inter.alpha_us / inter.gbps  the same over the socket transport (TCP on 127.0.0.1; on a
//                                cluster, run it across two hosts under a launcher instead)
//   reduce.gbps                  reduce_scatter minus all_gather of the same bytes on 2 ranks
//                                (the same transfers; the difference is the reduction)
//   step.us                      one rank's 8-byte all_reduce (the executor's fixed cost)
//   wake.us                      sendrecv at 8 B with LOOM_SPIN_US=0 (every message wakes a
//                                sleeping peer) minus α
// A measurement that fails or gives a non-physical value keeps the built-in default, and the
// file says so in a comment.
#pragma once

#include <string>

namespace loom::perf {

// Runs the measurements with `self` (this program's path) and writes the profile to `output`
// ("-" = stdout). Returns the process exit status.
int calibrate(const std::string& self, const std::string& output);

}  // namespace loom::perf
