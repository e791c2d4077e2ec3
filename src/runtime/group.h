// Issuing operations: immediately, or recorded between groupStart and groupEnd.
//
// Outside a group an operation runs at once and the call returns when it is done (host memory).
// Inside a group operations are recorded per thread; the outermost groupEnd runs them: per
// communicator, its collectives in issue order on one stream and all its Send/Recv operations
// as one unit on another stream, and every communicator's streams progress together, so a ring
// exchange cannot deadlock and one thread can drive all ranks of loomCommInitAll.
//
// Units run on the calling thread when the communicators have no asynchronous work pending,
// otherwise they are queued behind it (order is preserved).
//
// Thread-safety: group state is per thread.
#pragma once

#include <memory>

#include "base/status.h"
#include "runtime/communicator.h"
#include "runtime/op.h"
#include "runtime/work.h"

namespace loom::runtime {

Status submit(Communicator* comm, OpDesc op);
void groupStart();
// InvalidUsage without a matching groupStart.
Status groupEnd();
// Like groupEnd but returns at once; the work completes when everything ran.
Result<std::shared_ptr<WorkState>> groupEndAsync();
int groupDepth();
// Drops operations recorded for comm (it is being destroyed or aborted).
void forgetGroupOps(Communicator* comm);

}  // namespace loom::runtime
