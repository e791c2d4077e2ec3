// loom-perf's JSON: the result file (--json) and a small parser to read it back (--plot, tests).
//
// File layout (version 1; field names follow nccl-tests' JSON where they exist):
//   { "version": 1, "tool": "loom-perf", "loom_version": "0.1.0",
//     "start_time": "...", "end_time": "...", "args": [...], "config": {...},
//     "runs": [ { "collective": "all_reduce", "label": "loom", "nranks": 4, "nprocs": 4,
//                 "nthreads": 1, "transport": "auto", "algo": "",
//                 "results": [ { "size": 8, "count": 2, "type": "float", "redop": "sum",
//                                "root": -1, "algorithm": "ring",
//                                "out_of_place": {"time": 12.3, "alg_bw": 0.0, "bus_bw": 0.0,
//                                                 "nwrong": 0, "iters": 20},
//                                "in_place": {...} or null } ],
//                 "out_of_bounds": {"count": 0, "okay": true},
//                 "average_bus_bandwidth": {"bandwidth": 1.23} } ] }
// time is in microseconds, bandwidths in GB/s (1e9 B/s); nwrong is null when not checked;
// algorithm is the one loom's planner chooses for the row's call (loomCommChosenAlgorithm,
// LOOM_ALGO included; "" for the peers' rows).
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "options.h"
#include "report.h"

namespace loom::perf {

// Writes the file. Returns false with *error set when it cannot be written.
bool writeResultsJson(const std::string& path, const Options& options, const std::string& startTime,
                      const std::vector<RunRecord>& runs, std::string* error);

// A parsed JSON value.
struct JsonValue {
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<JsonValue> array;
  std::map<std::string, JsonValue> object;

  // Member lookup; a null value when absent or when this is not an object.
  const JsonValue& operator[](const std::string& key) const;
  bool isNull() const { return kind == Kind::kNull; }
};

// Parses text. Returns false with *error (position and reason) on malformed input.
bool parseJson(const std::string& text, JsonValue* out, std::string* error);

// Reads RunRecords back from a results file's text (what --plot draws).
bool readRunsJson(const std::string& text, std::vector<RunRecord>* runs, std::string* error);

// "YYYY-MM-DD HH:MM:SS" local time (nccl-tests' format).
std::string nowString();

}  // namespace loom::perf
