// Argument checks for every C ABI entry point (DESIGN.md section 6, "Bad input"): each
// failure is InvalidArgument/InvalidUsage with the reason, before anything is applied.
#pragma once

#include "api/handles.h"
#include "base/status.h"
#include "runtime/op.h"

namespace loom::api {

// The communicator handle itself: NULL, destroyed or not a communicator.
Status checkComm(const loomComm* comm, const char* fn);

// Everything about one operation: stream, datatype, reduction, root/peer, count overflow,
// NULL buffers, and overlapping buffers that are not the in-place layout. Fills op->dtype and
// op->op from the C values. redop < 0 means the collective takes no reduction.
Status checkOp(loomComm* comm, const char* fn, runtime::OpDesc* op, loomDataType_t datatype,
               int redop, loomStream_t stream);

}  // namespace loom::api
