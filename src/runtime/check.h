// The collective-mismatch check (LOOM_CHECK=1 or loomConfig_t.checkMode, DESIGN.md section 6).
//
// Before a communicator runs collectives, every rank publishes their signatures (collective,
// count, datatype, operator, root, sequence number) in the rendezvous store and reads every
// other rank's. If they differ, each rank fails with InvalidUsage naming the first rank whose
// signature differs from rank 0's and both signatures; nothing has been sent, so nothing is
// corrupted and nothing hangs. A rank that never arrives (it called fewer collectives) is a
// Timeout naming it. Send/Recv are not checked (their two sides differ by design).
//
// Cost: one store write and nranks store reads per rank and collective (TCP round trips for a
// multi-process job), which is why it is a debugging switch.
//
// Keys: "<comm prefix>check/<n>/<rank>/s" for the communicator's n-th check. A rank erases its
// own key of check n-1 once it has read every key of check n: by then every rank has finished
// reading check n-1 (they published check n after it), so the store does not grow.
//
// Thread-safety: called by the thread that issues the operations (the C ABI's contract).
#pragma once

#include <vector>

#include "base/status.h"
#include "runtime/communicator.h"
#include "runtime/op.h"

namespace loom::runtime {

struct CheckedOps {
  Communicator* comm;
  std::vector<const OpDesc*> ops;  // the collectives it is about to run, in order
};

// Runs the check for every communicator whose config asks for it. All publish first, then all
// read, so one thread may drive several ranks of one communicator in a group.
Status checkCollectives(const std::vector<CheckedOps>& items);

}  // namespace loom::runtime
