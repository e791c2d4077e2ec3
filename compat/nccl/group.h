// NCCL groups in compat/nccl: calls between ncclGroupStart and the outermost ncclGroupEnd are
// recorded here (per thread, as NCCL) and run there: first the communicator inits and splits
// of the group, concurrently (one thread may create every rank of a clique), then the
// operations, replayed inside one loomGroupStart/loomGroupEnd so that Send/Recv pairs progress
// together. Recording (rather than forwarding to loom's group at once) is what lets
// ncclGroupSimulateEnd price the group with loom's cost model and drop it.
#pragma once

#include <functional>

#include "comm.h"

namespace loom::nccl {

enum class CallKind {
  kAllReduce,
  kBroadcast,
  kReduce,
  kAllGather,
  kReduceScatter,
  kAllToAll,
  kGather,
  kScatter,
  kSend,
  kRecv
};

struct Call {
  CallKind kind = CallKind::kAllReduce;
  const void* send = nullptr;
  void* recv = nullptr;
  size_t count = 0;
  int datatype = ncclFloat32;  // ncclDataType_t as passed (checked before use)
  int op = -1;                 // ncclRedOp_t of reductions, -1 otherwise
  int root = 0;                // root of rooted collectives, peer of Send/Recv
  ncclComm* comm = nullptr;
  cudaStream_t stream = nullptr;  // as passed
  bool device = false;            // the buffers are device memory: loom orders it on stream
};

// True between ncclGroupStart and the matching outermost ncclGroupEnd on this thread.
bool inGroup();
// Runs job (an init or split of comm) at the outermost ncclGroupEnd.
void deferInit(ncclComm* comm, std::function<ncclResult_t(ncclComm*)> job);
// Validated call: run now (outside a group) or record it (inside one).
ncclResult_t issue(const Call& call, const char* fn);
// Closes one group level (ncclGroupEnd). The outermost one runs the group; with `sim`
// (ncclGroupSimulateEnd) it runs the group's inits, prices its calls with loom's cost model into
// sim->estimatedTime and drops them.
ncclResult_t groupEnd(ncclSimInfo_t* sim);

}  // namespace loom::nccl
