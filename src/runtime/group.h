// Issuing operations: immediately, or recorded between groupStart and groupEnd.
//
// Outside a group an operation runs at once and the call returns when it is done (host memory).
// Inside a group operations are recorded per thread; the outermost groupEnd runs them: per
// communicator, its collectives in issue order on one stream and all its Send/Recv operations
// as one unit on another stream, and every communicator's streams progress together, so a ring
// exchange cannot deadlock and one thread can drive all ranks of loomCommInitAll.
//
// Units run on the calling thread when the communicators have no asynchronous work pending,
// otherwise they are queued behind it (order is preserved). Operations on device buffers always
// run on the communicator's worker, after their stream reached them (submitStaged).
//
// Thread-safety: group state is per thread.
#pragma once

#include <memory>

#include "base/cuda.h"
#include "base/status.h"
#include "runtime/communicator.h"
#include "runtime/op.h"
#include "runtime/work.h"

namespace loom::runtime {

Status submit(Communicator* comm, OpDesc op);
// An operation on device buffers (base/cuda.h): op's buffers are the stage's pinned copies.
// Outside a group it is queued for the communicator's worker and the call returns at once;
// inside one it joins the group, whose groupEnd then returns without waiting for the device
// operations (their completion is ordered on their streams).
Status submitStaged(Communicator* comm, OpDesc op, std::unique_ptr<cuda::StreamStage> stage);
// A device call of the CUDA IPC path (device_ipc.h), outside groups: `stage` has no buffers;
// the worker runs the call once the stream reached it.
Status submitDeviceIpc(Communicator* comm, OpDesc op, int device,
                       std::unique_ptr<cuda::StreamStage> stage);
void groupStart();
// InvalidUsage without a matching groupStart.
Status groupEnd();
// Like groupEnd but returns at once; the work completes when everything ran.
Result<std::shared_ptr<WorkState>> groupEndAsync();
int groupDepth();
// Drops operations recorded for comm (it is being destroyed or aborted).
void forgetGroupOps(Communicator* comm);

}  // namespace loom::runtime
