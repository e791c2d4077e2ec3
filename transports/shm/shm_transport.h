// The shared-memory transport: ranks that are processes (or threads) on one host.
//
// Addresses. Each Transport listens on an abstract Unix SOCK_SEQPACKET socket named
// "loom-shm-<commHash>-<rank>-<random>" (the random part keeps concurrent jobs and tests with
// equal hashes apart); localAddress() is that name. For each (peer, lane) the lower rank
// connects and the higher accepts; the handshake (handshake.h) authenticates both sides with
// the job secret and exchanges receive-ring and doorbell descriptors. Connecting to oneself
// (peer == rank) is InvalidArgument, as in every transport.
//
// Data. One SPSC ring per direction (ring.h), created by the receiver. Messages stream through
// the ring in slot-sized fragments and complete on the sender as soon as the last fragment is
// in the ring. Single copy: between threads of one process (from directMinBytes), and between
// processes if enabled (cma, from cmaMinBytes, when the handshake's probe succeeds), the sender
// publishes a descriptor instead and the receiver copies straight from the sender's buffer
// (memcpy, or process_vm_readv); that send completes when the receiver has copied it.
//
// Wakeups. Whoever publishes a slot or frees one rings the other side's Doorbell (a fence and
// a load unless the other side is asleep); a connection in the middle of a chunked single-copy
// receive rings its own, so an armed driver does not sleep on work it has left. addPollFds()
// lists the control socket, which turns readable when the peer process exits, so a sleeping
// driver also wakes on peer death (and a handshake socket or retry timer while connecting).
//
// Failure. The peer's exit or close is seen on the control socket (EOF); what it published
// before is still delivered, and then whatever remains pending fails with a RemoteError naming
// it. close() publishes how many receives this side still honours, so a peer whose sends go
// beyond them fails them at once instead of waiting (both ranks may close with sends in
// flight). A connection closed before its handshake finished tells the peer too (handshake.h).
//
// Driving (what the runtime must do): call Connection::progress() on every connection with
// work pending, and Transport::progress() while connections are being set up or closed before
// they were (a connecting Connection's progress() drives the Transport's accept loop too).
// All calls for one Transport and its Connections from one thread at a time. Connections may
// outlive their Transport and vice versa (they share its handshake hub).
#pragma once

#include <cstdint>
#include <memory>

#include "base/status.h"
#include "transports/shm/ring.h"
#include "transports/transport.h"

namespace loom::transport::shm {

// Defaults measured on the 2-core development machine with tests/unit/transports/shm_bench
// (--rt; numbers in the shm transport's report to the lead):
//
// Ring: 8 slots of 64 KiB per direction. Streaming 64 KiB..1 MiB messages between processes
// reaches ~30 GB/s one way and ~15 GB/s per direction both ways; 16 slots gain 2-6 %, 4 slots
// lose 5-10 %, 16..32 KiB slots lose 5-25 % (more publish/doorbell overhead per byte), 128 and
// 256 KiB slots are within 3 %. 512 KiB per direction also keeps a rank's rings inside the
// 1 MiB L2 when it talks to a few peers, which is what makes the second copy nearly free.
inline constexpr uint32_t kDefaultSlotBytes = 64 * 1024;
inline constexpr uint32_t kDefaultSlotCount = 8;

// Same process: a direct memcpy from the sender's buffer is 2-4x faster than the FIFO (64 KiB:
// 78 vs 27 GB/s one way, 58 vs 13 GB/s both ways); from 4 KiB on it wins (8 KiB both ways:
// 15.5 vs 8.2 GB/s). Below that the copy into the ring is trivial and completes the send at
// once, without waiting for the receiver.
inline constexpr uint64_t kDefaultDirectMinBytes = 4 * 1024;

// Between processes, CMA (process_vm_readv) is off by default: here it loses to the FIFO at
// every size (64 KiB: 12 vs 30 GB/s; 64 MiB: 2.0 vs 16.6 GB/s one way, 1.8 vs 8.2 GB/s both
// ways) because it pins and maps the sender's pages one 4 KiB page at a time, while the FIFO's
// second copy runs between caches. Where pages are huge or the CPUs are busier than the
// memory, it may pay: ShmOptions::cma, from kDefaultCmaMinBytes.
inline constexpr uint64_t kDefaultCmaMinBytes = 64 * 1024;

// Most bytes one progress() call copies for one single-copy message, so that one connection
// cannot keep the driver from the others for long (about 100 us at memory speed).
inline constexpr uint64_t kDefaultCopyChunkBytes = 1024 * 1024;

struct ShmOptions {
  bool directCopy = true;  // same process: the receiver memcpys from the sender's buffer
  uint64_t directMinBytes = kDefaultDirectMinBytes;
  bool cma = false;  // between processes: process_vm_readv (probed at handshake)
  uint64_t cmaMinBytes = kDefaultCmaMinBytes;
  uint64_t copyChunkBytes = kDefaultCopyChunkBytes;
  RingGeometry geometry{kDefaultSlotBytes, kDefaultSlotCount};

  // Defaults adjusted by the Config (LOOM_SHM_CMA turns cross-process single copy on).
  static ShmOptions fromConfig(const Config& config);
};

// The factory behind createTransport("shm"), with explicit options (tests and benchmarks).
Result<std::unique_ptr<Transport>> createShmTransport(const TransportContext& context,
                                                      const ShmOptions& options);

}  // namespace loom::transport::shm
