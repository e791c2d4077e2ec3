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
// Buffers in device memory (or with a stream) fill *device: the call takes the staged GPU
// path (base/cuda.h). Host and device buffers mixed in one call are InvalidArgument, as is a
// stream given with host buffers; a stream where no GPU is usable is InvalidUsage.
struct DeviceCall {
  bool device = false;
  size_t sendBytes = 0, recvBytes = 0;
  int gpu = -1;  // the buffers' CUDA device
};
Status checkOp(loomComm* comm, const char* fn, runtime::OpDesc* op, loomDataType_t datatype,
               int redop, loomStream_t stream, DeviceCall* device);

}  // namespace loom::api
