// Filling inputs and checking outputs of one row (values.h has the values). Outputs are first
// set to a sentinel (0xFF bytes, a NaN, for floating types; 0xA5 bytes for integers, which no
// input or result takes), so an element the library never wrote is counted as wrong. Outputs
// are compared byte for byte with the encoded expected value.
//
// Thread-safety: functions of their arguments; each rank works on its own buffers.
#pragma once

#include <cstdint>
#include <string>

#include "collectives.h"
#include "values.h"

namespace loom::perf {

struct RowSpec {
  CollKind kind = CollKind::kAllReduce;
  loomDataType_t type = loomFloat32;
  OpKind op = OpKind::kSum;  // kNone for collectives that do not reduce
  int root = -1;
  int rank = 0;
  int nranks = 1;
  Counts counts;
  bool inPlace = false;
};

// The send and receive pointers of the row inside this rank's two buffers (each at least
// max(send, recv) elements); in place, both lie in one of them (collectives.h).
void rowPointers(const RowSpec& row, void* sendBase, void* recvBase, void** sendbuf,
                 void** recvbuf);

// Sets the output region to the sentinel, then writes this rank's inputs.
void prepareRow(const RowSpec& row, const ValueModel& values, void* sendbuf, void* recvbuf);

// Number of output elements of this rank that differ from the expected result. When some do,
// *firstError (if not null) describes the first one.
int64_t countWrong(const RowSpec& row, const ValueModel& values, const void* recvbuf,
                   std::string* firstError);

// Test-only fault: flips a bit of this rank's first output element (no-op without output).
void corruptOutput(const RowSpec& row, void* recvbuf);

}  // namespace loom::perf
