// FaultTransport: a Transport that wraps another and injects the faults of a FaultPlan
// (fault_plan.h) into the messages this rank sends. Tests install it with the runtime's
// transport decorator hook (runtime/testing.h) or wrap a transport directly (conformance), so
// the same collectives and conformance suites run through drops, delays, short writes, damaged
// headers, closed connections and dead ranks.
//
// Faults act on the sending side, when a message is posted (its index on the connection
// direction is known then). Receives pass straight through to the wrapped connection, so what
// the receiver sees is exactly what the real transport does with the damaged traffic.
//
// Contracts are those of transport.h, with these differences, all deliberate:
//   - a dropped message completes for the sender at once (in order: after the ones before it);
//   - a delayed message is held (and every later message of its connection with it, so the
//     FIFO order holds) until its release time; a timerfd in addPollFds() wakes the driver then;
//   - a short write of a zero-byte message cannot shorten it: its header is corrupted instead;
//   - close() releases every held message at once, then closes the wrapped connection.
//
// Ownership: a FaultTransport owns the wrapped transport; each FaultConnection owns its wrapped
// connection. Connections register with their transport (for `crash`) and must be destroyed
// before it, as with every transport.
// Thread-safety: as transport.h (one driving thread at a time); the crash flag is atomic.
#pragma once

#include <memory>

#include "transports/testing/fault_plan.h"
#include "transports/transport.h"

namespace loom::transport::fault {

// Wraps `inner` (created for `context`) with the faults of `plan`.
std::unique_ptr<Transport> wrapWithFaults(std::unique_ptr<Transport> inner,
                                          const TransportContext& context, FaultPlan plan);

}  // namespace loom::transport::fault
