// The shared-memory transport: ranks that are processes (or threads) on one host.
//
// Addresses. Each Transport listens on an abstract Unix SOCK_SEQPACKET socket named
// "loom-shm-<commHash>-<rank>-<random>" (the random part keeps concurrent jobs and tests with
// equal hashes apart); localAddress() is that name. For each (peer, lane) the lower rank
// connects and the higher accepts; the handshake (handshake.h) authenticates both sides with
// the job secret and exchanges receive-ring and doorbell descriptors. Connecting to oneself
// (peer == rank) is InvalidArgument, as in every transport.
//
// Data. One SPSC ring per direction (ring.h), created by the receiver. Messages below
// singleCopyMinBytes (and all of them when single copy is off or unavailable) stream through
// the ring in slot-sized fragments and complete on the sender as soon as the last fragment is
// in the ring. Larger ones publish a descriptor and the receiver copies straight from the
// sender's buffer (process_vm_readv between processes, memcpy between threads); the send
// completes when the receiver frees the descriptor's slot.
//
// Wakeups. Whoever publishes a slot or frees one rings the other side's Doorbell (a fence and
// a load unless the other side is asleep). addPollFds() lists the control socket, which turns
// readable when the peer process exits, so a sleeping driver also wakes on peer death.
//
// Driving (what the runtime must do): call Connection::progress() on every connection with
// work pending, and Transport::progress() while any connection is still connecting (an
// accepting Connection's progress() drives the Transport's accept loop too, so calling either
// is enough). All calls for one Transport and its Connections from one thread at a time.
// Connections may outlive their Transport and vice versa.
#pragma once

#include <cstdint>
#include <memory>

#include "base/status.h"
#include "transports/shm/ring.h"
#include "transports/transport.h"

namespace loom::transport::shm {

// Tuned on the 2-core development machine (tests/unit/transports/shm_bench.cpp, see the
// report in the shm transport's commit): 64 KiB slots amortise the per-slot publish and
// doorbell cost (a 1 MiB message is 16 slots) while 8 of them (512 KiB, plus the peer's
// buffer) stay in the 1 MiB L2 of the core that copies out; fewer slots starve the pipeline,
// larger ones spill the L2.
inline constexpr uint32_t kDefaultSlotBytes = 64 * 1024;
inline constexpr uint32_t kDefaultSlotCount = 8;
// From this size on, a message moves with one copy (below it the descriptor round trip and
// the page pinning of process_vm_readv cost more than the second copy).
inline constexpr uint64_t kDefaultSingleCopyMinBytes = 64 * 1024;
// Most bytes one progress() call copies for one single-copy message, so that one connection
// cannot keep the driver from the others for long (about 100 us at memory speed).
inline constexpr uint64_t kDefaultCopyChunkBytes = 1024 * 1024;

struct ShmOptions {
  bool singleCopy = true;
  uint64_t singleCopyMinBytes = kDefaultSingleCopyMinBytes;
  uint64_t copyChunkBytes = kDefaultCopyChunkBytes;
  RingGeometry geometry{kDefaultSlotBytes, kDefaultSlotCount};

  // Defaults adjusted by the Config. (Proposed variable for the lead: LOOM_SHM_SINGLE_COPY,
  // Bool, default 1, "Copy large shm messages once, with process_vm_readv (CMA) between
  // processes; 0 = always through the shared FIFO". Until it exists this returns defaults.)
  static ShmOptions fromConfig(const Config& config);
};

// The factory behind createTransport("shm"), with explicit options (tests and benchmarks).
Result<std::unique_ptr<Transport>> createShmTransport(const TransportContext& context,
                                                      const ShmOptions& options);

}  // namespace loom::transport::shm
