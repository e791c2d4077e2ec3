// loom-topo --ranks: the rank-to-host/device map of a communicator that loom-topo starts
// itself (T ranks as threads, or -np N local ranks as processes of this program, started the
// way loomrun starts them) or that a launcher started (loomrun, mpirun, srun, torchrun).
//
// Rank 0 prints the communicator's fused topology (runtime/topo_fusion.h): for every rank its
// host, pid, NUMA node, GPU and CPUs; the ranks of each host; and the path class between every
// two ranks (NET across hosts). --json prints the same as one JSON object.
#pragma once

namespace loom::tools {

// Must run on the main thread before any other thread exists (the -np launcher blocks
// signals; see launch/launch.h). Returns the exit status.
int showRanks(int np, int threads, bool json, int argc, char** argv);

}  // namespace loom::tools
