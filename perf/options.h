// loom-perf's command line: nccl-tests' flags (same letters, long names and defaults) plus
// loom's extras. Parsing is pure: it reads argv only, so every rank of a job parses the same
// options the same way.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "collectives.h"
#include "types.h"

namespace loom::perf {

struct Options {
  // ---- what to run (subcommand: "all_reduce", a comma-separated list, or "all") ----
  std::vector<CollKind> collectives;
  // ---- nccl-tests flags ----
  int nThreads = 1;                       // -t: ranks as threads per process
  int nGpus = 1;                          // -g: GPUs per rank, must be 1
  size_t minBytes = 32u << 20;            // -b
  size_t maxBytes = 32u << 20;            // -e
  size_t stepBytes = 1u << 20;            // -i
  size_t stepFactor = 1;                  // -f (> 1: multiply instead of add)
  int iters = 20;                         // -n
  int aggIters = 1;                       // -m: calls per iteration, in one group
  int warmupIters = 5;                    // -w
  int runCycles = 1;                      // -N (0 = forever)
  int check = 1;                          // -c: checked calls per row (0 = no check, "N/A")
  std::vector<OpKind> ops{OpKind::kSum};  // -o (all = every op)
  std::vector<loomDataType_t> types{loomFloat32};  // -d (all = every type)
  int root = 0;                                    // -r (-1 = every root)
  int blocking = 0;                                // -z: barrier after every call
  int average = 1;             // -a: time over ranks 0=rank 0, 1=avg, 2=min, 3=max
  int timeoutSec = 0;          // -T: loom's deadline for every wait (0 = LOOM_TIMEOUT_MS)
  bool reportCpuTime = false;  // -C: header says "cputime" (host timing is CPU time)
  // ---- loom extras ----
  int np = 0;                   // -np N: start N local ranks of this program
  std::string algo;             // --algo NAME or "coll:name;…" (LOOM_ALGO)
  std::string transport;        // --transport auto|loopback|shm|socket
  std::string device = "host";  // --device host|cuda: where the buffers live
  std::string jsonPath;         // --json FILE: every row, written by rank 0
  std::string peerLabel;        // --peer-format LABEL: the peers' raw format (summarize.py)
  double budgetSec = 0;         // --budget S: adaptive iterations, as the peer benchmarks
  double slowLimitSec = 2;      // --slow-limit S: with --budget, one call slower stops
  int corruptRank = -1;         // --test-corrupt RANK: flip one output element (tests)
  std::string plotOutput;       // --plot OUT.svg RESULT.json…: draw, run nothing
  std::vector<std::string> plotInputs;
  std::string calibrateOutput;  // --calibrate FILE: write a cost-model profile, run nothing else
  std::vector<int> tuneRanks;   // --tune N,...: with --calibrate, measured.np<N> lines
  size_t tuneMaxBytes = 16u << 20;  // --tune-max SIZE: the largest size --tune times
  int tuneRuns = 3;                 // --tune-runs N: interleaved runs per size (median)
  std::vector<std::string> args;    // argv as given (for the JSON record)
};

enum class ParseResult { kRun, kHelp, kError };

// Parses argv. argv[0]'s basename may name the collective ("all_reduce_perf"). On kError,
// *error says what is wrong.
ParseResult parseOptions(int argc, char** argv, Options* out, std::string* error);

// The usage text.
std::string usageText();

// argv without "-np N" (what `loom-perf -np N` starts its ranks with).
std::vector<std::string> argsWithoutNp(int argc, char** argv);

// The sizes of one sweep, in order (nccl-tests: min, then *factor or +step, up to max).
std::vector<size_t> sweepSizes(const Options& options);

// LOOM_ALGO for --algo NAME and the collectives run ("" when --algo is not given).
std::string algoOverride(const Options& options);

}  // namespace loom::perf
