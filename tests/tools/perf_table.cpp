#include "perf_table.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace loom::test {
namespace {

bool parseHalf(std::istringstream& in, PerfHalf* h) {
  std::string time, alg, bus, wrong;
  if (!(in >> time >> alg >> bus >> wrong)) return false;
  char* end = nullptr;
  h->timeUs = std::strtod(time.c_str(), &end);
  if (*end) return false;
  h->algBw = std::strtod(alg.c_str(), &end);
  if (*end) return false;
  h->busBw = std::strtod(bus.c_str(), &end);
  if (*end) return false;
  if (wrong == "N/A") {
    h->wrong = -1;
    return true;
  }
  h->wrong = std::strtoll(wrong.c_str(), &end, 10);
  return *end == '\0';
}

}  // namespace

std::vector<PerfTable> parsePerfOutput(const std::string& text) {
  std::vector<PerfTable> tables;
  std::istringstream lines(text);
  PerfTable* cur = nullptr;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("# nThread ", 0) == 0) {
      tables.emplace_back();
      cur = &tables.back();
      continue;
    }
    if (cur == nullptr) continue;
    if (line.rfind("#       size", 0) == 0 || line.rfind("#        (B)", 0) == 0 ||
        line.find("out-of-place") != std::string::npos) {
      cur->headerLines.push_back(line);
      continue;
    }
    int n = 0;
    char verdict[16] = {};
    if (std::sscanf(line.c_str(), "# Out of bounds values : %d %15s", &n, verdict) == 2) {
      cur->outOfBounds = n;
      cur->outOfBoundsVerdict = verdict;
      continue;
    }
    double bw = 0;
    if (std::sscanf(line.c_str(), "# Avg bus bandwidth    : %lf", &bw) == 1) {
      cur->avgBusBw = bw;
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    std::istringstream in(line);
    PerfRow row;
    std::string extra;
    if (!(in >> row.bytes >> row.count >> row.type >> row.redop >> row.root) ||
        !parseHalf(in, &row.outOfPlace) || !parseHalf(in, &row.inPlace) || (in >> extra)) {
      cur->errors.push_back(line);
      continue;
    }
    cur->rows.push_back(row);
  }
  return tables;
}

}  // namespace loom::test
