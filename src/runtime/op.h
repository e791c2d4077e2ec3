// OpDesc: one operation as the user asked for it (after argument checks), and Unit: what runs
// as one Execution (one collective, or the Send/Recv operations of a group on one communicator,
// which progress together).
#pragma once

#include <cstdint>
#include <vector>

#include "algorithms/schedule.h"
#include "base/dtype.h"

namespace loom::runtime {

// Lanes (transport connections per peer pair): collective channels use 0..kMaxChannels-1,
// point-to-point traffic has its own lane so it never interleaves with collectives.
inline constexpr int kMaxChannels = 32;
inline constexpr int kP2pLane = 64;

struct OpDesc {
  algo::Collective collective = algo::Collective::kAllReduce;
  const void* sendbuf = nullptr;
  void* recvbuf = nullptr;
  uint64_t count = 0;
  DataType dtype = DataType::kFloat32;
  RedOp op;
  int root = 0;
  int peer = -1;
  // Assigned when the operation is submitted, in the order the user issued it: the
  // collective's sequence number on the communicator, or for Send/Recv the sequence number of
  // messages between this rank and `peer` in that direction.
  uint64_t seq = 0;
  // A host operation loom runs for its own purposes (the CUDA IPC path's barriers): not in the
  // communicator's counters, which count the calls the user made.
  bool internal = false;
};

// Bytes of this rank's send and receive buffers (0: not used on this rank); false when they
// overflow size_t.
bool bufferBytes(const OpDesc& op, int rank, int nranks, size_t* send, size_t* recv);

struct Unit {
  std::vector<OpDesc> ops;  // one collective, or several Send/Recv
  bool isP2p() const {
    return !ops.empty() && (ops[0].collective == algo::Collective::kSend ||
                            ops[0].collective == algo::Collective::kRecv);
  }
};

}  // namespace loom::runtime
