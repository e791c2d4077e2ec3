// drive(): runs units of one or more communicators to completion on the calling thread.
//
// Each stream is one communicator's ordered units; streams progress together (a group that
// spans communicators, or one thread driving every rank of loomCommInitAll). When nothing
// moves the driver spins for LOOM_SPIN_US, then arms every involved doorbell, checks once
// more, and sleeps in poll() on the doorbells and the transports' descriptors until a peer
// wakes it, an abort rings, or 100 ms pass (to re-check deadlines). So ranks that outnumber
// cores sleep instead of stealing each other's cycles.
//
// Every unit has a deadline (its communicator's timeout from the unit's start); on expiry the
// error names the operation, this rank, where the execution waits and for whom.
//
// The caller holds each communicator's engine mutex for the whole call.
#pragma once

#include <memory>
#include <vector>

#include "base/status.h"
#include "runtime/communicator.h"

namespace loom::runtime {

struct Stream {
  Communicator* comm = nullptr;
  std::vector<Unit> units;  // in order
  size_t next = 0;          // the first unit not yet started
  Status status;            // first failure; later units are not run
};

// Drives every stream until all its units ran or failed. Returns the first failure.
Status drive(std::vector<Stream>* streams);

// Runs one prepared unit whose execution sleepsInPlace() (the host window's fast lane,
// Communicator::runNow) to completion on the calling thread, as drive() would run it alone:
// the same checks, spinning and sleeping, and finish(). No allocation, no doorbell.
Status driveInPlace(Communicator* comm, PreparedUnit* unit);

}  // namespace loom::runtime
