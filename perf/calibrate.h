// loom-perf --calibrate FILE: measures this machine's transports and writes the cost-model
// profile the planner loads with LOOM_TUNING_FILE (format: algorithms/cost_model.h).
//
// Each measurement is a child run of loom-perf itself with --json, so it uses exactly the
// paths a benchmark does:
//   intra.alpha_us / intra.gbps  sendrecv on 2 processes over shm: time at 8 B is α; the
//                                slope between 1 MiB and 16 MiB is the bandwidth
//   inter.alpha_us / inter.gbps  the same over the socket transport (TCP on 127.0.0.1; on a
//                                cluster, run it across two hosts under a launcher instead)
//   reduce.gbps                  a float sum of two 16 MiB vectors minus a memcpy of 16 MiB,
//                                in this process (timing reduce_scatter minus all_gather,
//                                as before, gave anything from 4 to 57 GB/s on one VM)
//   copy.gbps                    that memcpy of 16 MiB
//   window.us                    an 8-byte one_shot all_reduce on 2 processes (the host
//                                window's flag hand-off) minus step.us
//   step.us                      one rank's 8-byte all_reduce (the executor's fixed cost)
//   wake.us                      sendrecv at 8 B with LOOM_SPIN_US=0 (every message wakes a
//                                sleeping peer) minus α
//   measured.np<N>              (--tune N) the fastest algorithm per size, each forced in turn
// A measurement that fails or gives a non-physical value keeps the built-in default, and the
// file says so in a comment.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace loom::perf {

// Runs the measurements with `self` (this program's path) and writes the profile to `output`
// ("-" = stdout). With tuneRanks (--tune N,...), it also times every algorithm of AllReduce,
// AllGather, ReduceScatter, Broadcast, Reduce and AllToAll forced on each N processes of this
// host, 8 B to tuneMaxBytes, tuneRuns times, and writes the fastest per size as a
// measured.np<N> line (algorithms/cost_model.h). Returns the process exit status.
int calibrate(const std::string& self, const std::string& output, const std::vector<int>& tuneRanks,
              size_t tuneMaxBytes, int tuneRuns);

}  // namespace loom::perf
