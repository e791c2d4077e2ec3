// The collectives loom-perf measures, with nccl-tests' semantics (its doc/PERFORMANCE.md and
// src/<collective>.cu): how a size maps to element counts and in-place offsets, and how the
// measured time becomes algorithm and bus bandwidth.
//
// For a row of `size` bytes and n ranks, count = size / elementBytes and
//   collective      param count      send / recv (elements)   algbw bytes    busbw factor
//   all_reduce      count            count / count            count          2(n-1)/n
//   broadcast       count            count / count            count          1
//   reduce          count            count / count            count          1
//   all_gather      count/n          count/n / n*(count/n)    n*param        (n-1)/n
//   reduce_scatter  count/n          n*(count/n) / count/n    n*param        (n-1)/n
//   alltoall        count/n          n*(count/n) each         n*param        (n-1)/n
//   gather          count/n          count/n / n*(count/n)    n*param        (n-1)/n
//   scatter         count/n          n*(count/n) / count/n    n*param        (n-1)/n
//   sendrecv        count            count / count            count          1
// algbw = algbw bytes * elementBytes / time (decimal GB/s, 1e9 B/s); busbw = algbw * factor.
// The size column prints max(send, recv) bytes; the count column the param count.
// In place: all_gather sends from recv + rank*param; reduce_scatter receives at
// send + rank*param; gather sends from recv + rank*param; scatter receives at
// send + rank*param; the others use one buffer for both. In-place sendrecv (send from and
// receive into one buffer at once) is undefined, so its rows are timed but not checked (N/A),
// as in nccl-tests.
//
// Thread-safety: immutable table; runCollective is as thread-safe as the loom call it makes.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

#include "loom/loom.h"
#include "types.h"

namespace loom::perf {

enum class CollKind {
  kAllReduce,
  kAllGather,
  kReduceScatter,
  kBroadcast,
  kReduce,
  kAllToAll,
  kGather,
  kScatter,
  kSendRecv
};

struct CollInfo {
  CollKind kind;
  const char* name;      // loom-perf subcommand: "all_reduce"
  const char* peerName;  // collective= name in the peers' raw format: "allreduce", "bcast"
  const char* algoKey;   // LOOM_ALGO key(s) before ':' ("send,recv" for sendrecv)
  bool reduces;          // takes a reduction op (redop column); else "none"
  bool rooted;           // takes a root (root column); else -1
  bool perRankParam;     // param count = count / n (the n*param collectives above)
  // The peers' benchmarks (shared/peers) time this collective in place: MPI_Bcast and
  // gloo::broadcast have one buffer. --peer-format measures loom the same way.
  bool peersInPlace;
};

const CollInfo& collInfo(CollKind kind);
std::span<const CollInfo> allCollectives();
// "all_reduce" (also "allreduce", "all_reduce_perf", …). nullopt when unknown.
std::optional<CollKind> parseCollective(std::string_view name);

// Element counts of one row.
struct Counts {
  size_t param = 0;        // count argument of the loom call
  size_t send = 0;         // elements in the send buffer
  size_t recv = 0;         // elements in the receive buffer
  size_t sendInPlace = 0;  // in place: send buffer = recv + this (elements)
  size_t recvInPlace = 0;  // in place: recv buffer = send + this (elements)
};
Counts countsFor(CollKind kind, size_t count, int nranks);

// Bytes the size column shows: max(send, recv) * elementBytes.
size_t rowBytes(const Counts& counts, size_t elementBytes);
// algbw and busbw in GB/s for one call of `seconds`.
void bandwidth(CollKind kind, const Counts& counts, size_t elementBytes, int nranks, double seconds,
               double* algBw, double* busBw);
// The busbw factor alone (for tests and docs).
double busFactor(CollKind kind, int nranks);

// One call of the collective: on host buffers with stream NULL (blocking), or on device
// buffers ordered on `stream`. `op` is ignored for collectives that do not reduce; mulsum
// creates a PreMulSum op with scalar 2 around the call (the op is bound at the call, so it may
// be destroyed while the call is still queued on the stream). sendbuf/recvbuf are already
// offset for in-place rows.
loomResult_t runCollective(CollKind kind, loomComm_t comm, const void* sendbuf, void* recvbuf,
                           const Counts& counts, loomDataType_t type, OpKind op, int root,
                           loomStream_t stream = nullptr);

}  // namespace loom::perf
