// Parsing loom-perf's nccl-tests table back, as the tests (and any nccl-tests log parser) do.
#pragma once

#include <string>
#include <vector>

namespace loom::test {

struct PerfHalf {
  double timeUs = 0, algBw = 0, busBw = 0;
  long long wrong = -1;  // -1: "N/A"
};

struct PerfRow {
  long long bytes = 0, count = 0;
  std::string type, redop;
  int root = 0;
  PerfHalf outOfPlace, inPlace;
};

struct PerfTable {
  std::vector<std::string> headerLines;  // the three column-header lines
  std::vector<PerfRow> rows;
  int outOfBounds = -1;
  std::string outOfBoundsVerdict;  // "OK" or "FAILED"
  double avgBusBw = -1;
  std::vector<std::string> errors;  // lines that should have parsed and did not
};

// Parses every table in `text` (loom-perf prints one per collective) into `tables`.
std::vector<PerfTable> parsePerfOutput(const std::string& text);

}  // namespace loom::test
