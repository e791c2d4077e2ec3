// What loom-perf prints and records: nccl-tests' table on stdout (header, one row per size
// with out-of-place and in-place columns, footer), or the peers' raw format, plus the records
// the JSON file is written from.
//
// Table layout (nccl-tests 2.x, src/common.cu), byte for byte:
//   # nThread 1 nGpus 1 minBytes 8 maxBytes 67108864 step: 4(factor) warmup iters: 5 ...
//   #
//   # Using devices
//   #  Rank  0 Group  0 Pid  12345 on       host device -1 [host] host memory
//   #
//   #                                                              out-of-place    ...
//   #       size         count      type   redop    root     time   algbw   busbw #wrong ...
//   #        (B)    (elements)                               (us)  (GB/s)  (GB/s)        ...
//              8             2     float     sum      -1    12.34    0.00    0.00      0 ...
//   # Out of bounds values : 0 OK
//   # Avg bus bandwidth    : 1.2345
//   #
//
// Thread-safety: a Reporter is used by global rank 0's thread only.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "collectives.h"
#include "options.h"

namespace loom::perf {

// One measured half of a row.
struct Measurement {
  bool present = false;
  double timeUs = 0, algBw = 0, busBw = 0;
  int64_t wrong = -1;  // -1: not checked ("N/A")
  int iters = 0;
};

struct RowRecord {
  size_t bytes = 0;  // size column
  size_t count = 0;  // count column (param count)
  std::string type, redop;
  int root = -1;
  std::string algorithm;  // the planner's choice for the call (loomCommChosenAlgorithm); "" unknown
  Measurement outOfPlace, inPlace;
};

// One collective's sweep: what the JSON file holds per run.
struct RunRecord {
  std::string collective;  // loom-perf name, e.g. "all_reduce"
  std::string label = "loom";
  int nranks = 0, nprocs = 0, nthreads = 0;
  std::string transport, algo;
  std::vector<RowRecord> rows;
  int outOfBounds = 0;
  double avgBusBw = 0;
};

// Who the ranks are, for the "Using devices" lines.
struct RankDesc {
  int rank = 0;
  int pid = 0;
  std::string host;
};

class Reporter {
 public:
  Reporter(const Options& options, FILE* out) : options_(options), out_(out) {}

  void header(const CollInfo& coll, int nranks, int nprocs, const std::vector<RankDesc>& ranks,
              const std::string& transport, const std::string& algo);
  // Peer format only: the "# label=..." line of one (collective, type, op) sweep.
  void peerHeader(const CollInfo& coll, int nranks, const char* type, const char* op);
  void rowStart(const RowRecord& row);
  void rowBody(const Measurement& m);
  void rowEnd();
  void footer(int outOfBounds, double avgBusBw);

  bool peerFormat() const { return !options_.peerLabel.empty(); }

 private:
  const Options& options_;
  FILE* out_;
  const RowRecord* row_ = nullptr;  // current row (peer format prints it at rowBody)
};

// nccl-tests' time column: "%7.0f" from 10 ms, "%7.1f" from 100 us, else "%7.2f".
std::string formatTime(double timeUs);

}  // namespace loom::perf
