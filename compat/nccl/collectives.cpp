// Collectives, Send/Recv and groups (nccl.h; group.h has the design).
#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "group.h"

using loom::nccl::Call;
using loom::nccl::CallKind;
using loom::nccl::fail;
using loom::nccl::fromLoom;

namespace loom::nccl {

namespace {

struct GroupState {
  int depth = 0;
  std::vector<Call> calls;
  std::vector<std::pair<ncclComm*, std::function<ncclResult_t(ncclComm*)>>> inits;
};

thread_local GroupState tGroup;

bool isReduction(CallKind k) {
  return k == CallKind::kAllReduce || k == CallKind::kReduce || k == CallKind::kReduceScatter;
}

// cudaStreamLegacy: NCCL's stream 0 is CUDA's default stream, while loom's NULL stream means
// host memory, so device calls on stream 0 name the legacy default stream explicitly.
const loomStream_t kLegacyDefaultStream = reinterpret_cast<loomStream_t>(0x1);

// Hands one call to loom (inside or outside a loom group): device buffers with their stream
// (loom's GPU path), host buffers blocking (the stream has nothing to order there).
loomResult_t callLoom(const Call& c, loomRedOp_t op) {
  const auto t = static_cast<loomDataType_t>(c.datatype);
  loomComm_t l = c.comm->loom;
  const loomStream_t stream = !c.device  ? nullptr
                              : c.stream ? static_cast<loomStream_t>(c.stream)
                                         : kLegacyDefaultStream;
  switch (c.kind) {
    case CallKind::kAllReduce:
      return loomAllReduce(c.send, c.recv, c.count, t, op, l, stream);
    case CallKind::kBroadcast:
      return loomBroadcast(c.send, c.recv, c.count, t, c.root, l, stream);
    case CallKind::kReduce:
      return loomReduce(c.send, c.recv, c.count, t, op, c.root, l, stream);
    case CallKind::kAllGather:
      return loomAllGather(c.send, c.recv, c.count, t, l, stream);
    case CallKind::kReduceScatter:
      return loomReduceScatter(c.send, c.recv, c.count, t, op, l, stream);
    case CallKind::kAllToAll:
      return loomAllToAll(c.send, c.recv, c.count, t, l, stream);
    case CallKind::kGather:
      return loomGather(c.send, c.recv, c.count, t, c.root, l, stream);
    case CallKind::kScatter:
      return loomScatter(c.send, c.recv, c.count, t, c.root, l, stream);
    case CallKind::kSend:
      return loomSend(c.send, c.count, t, c.root, l, stream);
    case CallKind::kRecv:
      return loomRecv(c.recv, c.count, t, c.root, l, stream);
  }
  return loomInternalError;
}

// Runs (or, inside a loom group, records) one call, resolving its reduction op.
ncclResult_t submit(const Call& c, const char* fn) {
  CallScope scope(c.comm);
  loomRedOp_t op = loomSum;
  bool temporary = false;
  if (isReduction(c.kind)) {
    ncclResult_t r = resolveOp(c.comm, c.op, c.datatype, &op, &temporary);
    if (r != ncclSuccess) return r;
  }
  loomResult_t lr = callLoom(c, op);
  ncclResult_t r = fromLoom(lr, fn);
  if (temporary) (void)loomRedOpDestroy(op, c.comm->loom);
  return r;
}

// Runs calls as one loom group; returns the first error. With `async`, the group completes in
// the background and its work is attached to every communicator involved (ncclInProgress).
ncclResult_t runCalls(const std::vector<Call>& calls, bool async) {
  (void)loomGroupStart();
  ncclResult_t first = ncclSuccess;
  for (const Call& c : calls) {
    // A call that fails here is not recorded; the group's other calls still run (as in NCCL,
    // peers then wait for it until loom's timeout).
    ncclResult_t r = submit(c, "ncclGroupEnd");
    if (first == ncclSuccess) first = r;
  }
  if (!async) {
    ncclResult_t r = fromLoom(loomGroupEnd(), "ncclGroupEnd");
    return first != ncclSuccess ? first : r;
  }
  loomWork_t work = nullptr;
  ncclResult_t r = fromLoom(loomGroupEndAsync(&work), "ncclGroupEnd");
  if (r != ncclSuccess) return r;
  auto shared = std::make_shared<AsyncWork>(work);
  std::vector<ncclComm*> comms;
  for (const Call& c : calls)
    if (std::find(comms.begin(), comms.end(), c.comm) == comms.end()) comms.push_back(c.comm);
  for (ncclComm* comm : comms)
    attachWork(comm, shared);
  return first != ncclSuccess ? first : ncclInProgress;
}

// Starts every deferred init together; waits for the blocking ones (and for ghosts, which it
// frees). ncclInProgress when a non-blocking one is still running.
ncclResult_t runInits(
    std::vector<std::pair<ncclComm*, std::function<ncclResult_t(ncclComm*)>>> inits) {
  for (auto& [comm, job] : inits)
    (void)startInit(comm, true, std::move(job));
  ncclResult_t first = ncclSuccess;
  bool running = false;
  for (auto& [comm, job] : inits) {
    if (!comm->blocking && !comm->ghost) {
      running = true;
      continue;
    }
    joinWorker(comm);
    if (comm->initResult != ncclSuccess && first == ncclSuccess)
      first = fail(comm->initResult, comm->initError);
    if (comm->ghost) delete comm;
  }
  if (first != ncclSuccess) return first;
  return running ? ncclInProgress : ncclSuccess;
}

// The calls' communicators must all be blocking or all non-blocking, and still live.
ncclResult_t groupMode(const std::vector<Call>& calls, bool* async) {
  *async = false;
  for (size_t i = 0; i < calls.size(); ++i) {
    ncclResult_t r = checkComm(calls[i].comm, "ncclGroupEnd", true);
    if (r != ncclSuccess) return r;
    if (i == 0) *async = !calls[i].comm->blocking;
    if (*async != !calls[i].comm->blocking)
      return fail(ncclInvalidUsage,
                  "ncclGroupEnd: the group mixes blocking and non-blocking communicators");
  }
  return ncclSuccess;
}

}  // namespace

bool inGroup() {
  return tGroup.depth > 0;
}

void deferInit(ncclComm* comm, std::function<ncclResult_t(ncclComm*)> job) {
  tGroup.inits.emplace_back(comm, std::move(job));
}

ncclResult_t issue(const Call& call, const char* fn) {
  if (inGroup()) {
    tGroup.calls.push_back(call);
    return ncclSuccess;
  }
  if (call.comm->blocking) return submit(call, fn);
  return runCalls({call}, true);
}

ncclResult_t groupEnd(ncclSimInfo_t* sim) {
  if (tGroup.depth == 0)
    return fail(ncclInvalidUsage, "ncclGroupEnd: no group is open (ncclGroupStart first)");
  if (sim && tGroup.depth > 1)
    return fail(ncclInvalidUsage, "ncclGroupSimulateEnd: must close the outermost group (" +
                                      std::to_string(tGroup.depth) + " are open)");
  if (--tGroup.depth > 0) return ncclSuccess;
  GroupState g = std::move(tGroup);
  tGroup = GroupState();
  ncclResult_t initResult = g.inits.empty() ? ncclSuccess : runInits(std::move(g.inits));
  if (g.calls.empty() || (initResult != ncclSuccess && initResult != ncclInProgress))
    return initResult;
  if (sim) {
    // Calls of one communicator run one after another; communicators run side by side.
    std::map<ncclComm*, double> perComm;
    for (const Call& c : g.calls) {
      double us = 0;
      ncclResult_t r = checkComm(c.comm, "ncclGroupSimulateEnd", true);
      if (r != ncclSuccess) return r;
      r = fromLoom(loomCommPredictTime(c.comm->loom, static_cast<loomCollective_t>(c.kind), c.count,
                                       static_cast<loomDataType_t>(c.datatype), c.root, &us),
                   "ncclGroupSimulateEnd");
      if (r != ncclSuccess) return r;
      perComm[c.comm] += std::max(us, 0.0);
    }
    double total = 0;
    for (auto& [comm, us] : perComm)
      total = std::max(total, us);
    sim->estimatedTime = static_cast<float>(total);
    return initResult;
  }
  bool async;
  ncclResult_t r = groupMode(g.calls, &async);
  if (r != ncclSuccess) return r;
  r = runCalls(g.calls, async);
  return r == ncclSuccess ? initResult : r;
}

}  // namespace loom::nccl

namespace {

static_assert(static_cast<int>(CallKind::kAllReduce) == loomCollAllReduce &&
              static_cast<int>(CallKind::kScatter) == loomCollScatter &&
              static_cast<int>(CallKind::kSend) == loomCollSend &&
              static_cast<int>(CallKind::kRecv) == loomCollRecv);

std::string rangeText(int v, int n) {
  return std::to_string(v) + " is out of range [0, " + std::to_string(n) + ")";
}

// Checks what NCCL checks before a call is enqueued, then runs or records it.
ncclResult_t start(Call c, const char* fn) {
  ncclResult_t r = loom::nccl::checkComm(c.comm, fn, true);
  if (r != ncclSuccess) return r;
  {
    std::lock_guard<std::mutex> lock(c.comm->mu);
    if (c.comm->revoked)
      return fail(ncclInvalidUsage, std::string(fn) + ": the communicator was revoked");
    if (c.comm->finalized)
      return fail(ncclInvalidUsage, std::string(fn) + ": the communicator was finalized");
  }
  if (c.datatype < 0 || c.datatype >= ncclNumTypes)
    return fail(ncclInvalidArgument, std::string(fn) + ": datatype " + std::to_string(c.datatype) +
                                         " is not an ncclDataType_t");
  const bool p2p = c.kind == CallKind::kSend || c.kind == CallKind::kRecv;
  const bool rooted = c.kind == CallKind::kBroadcast || c.kind == CallKind::kReduce ||
                      c.kind == CallKind::kGather || c.kind == CallKind::kScatter;
  if ((p2p || rooted) && (c.root < 0 || c.root >= c.comm->nranks))
    return fail(ncclInvalidArgument, std::string(fn) + (p2p ? ": peer " : ": root ") +
                                         rangeText(c.root, c.comm->nranks));
  if (loom::nccl::isReduction(c.kind) && c.op < 0)
    return fail(ncclInvalidArgument,
                std::string(fn) + ": op " + std::to_string(c.op) + " is not an ncclRedOp_t");
  if (loom::nccl::isReduction(c.kind) && c.op >= ncclNumOps) {
    std::lock_guard<std::mutex> lock(c.comm->mu);
    if (c.comm->ops.count(c.op) == 0)
      return fail(ncclInvalidArgument, std::string(fn) + ": op " + std::to_string(c.op) +
                                           " is neither a built-in ncclRedOp_t nor a PreMulSum "
                                           "op created on this communicator");
  }
  Call call = c;
  call.device = loom::nccl::isDeviceMemory(c.send) || loom::nccl::isDeviceMemory(c.recv);
  return loom::nccl::issue(call, fn);
}

constexpr int kNoOp = -1;

template <class E>
int raw(const E& e) {
  return loom::nccl::rawValue(e);
}  // the op of a call that does not reduce

// datatype and op are the raw values the caller passed (rawValue), checked by start().
Call make(CallKind kind, const void* send, void* recv, size_t count, int datatype, int op, int root,
          ncclComm_t comm, cudaStream_t stream) {
  Call c;
  c.stream = stream;
  c.kind = kind;
  c.send = send;
  c.recv = recv;
  c.count = count;
  c.datatype = datatype;
  c.op = op;
  c.root = root;
  c.comm = comm;
  return c;
}

}  // namespace

extern "C" {

ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count,
                           ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                           cudaStream_t stream) {
  return start(make(CallKind::kAllReduce, sendbuff, recvbuff, count, raw(datatype), raw(op), 0,
                    comm, stream),
               "ncclAllReduce");
}

ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count,
                           ncclDataType_t datatype, int root, ncclComm_t comm,
                           cudaStream_t stream) {
  return start(make(CallKind::kBroadcast, sendbuff, recvbuff, count, raw(datatype), kNoOp, root,
                    comm, stream),
               "ncclBroadcast");
}

ncclResult_t ncclBcast(void* buff, size_t count, ncclDataType_t datatype, int root, ncclComm_t comm,
                       cudaStream_t stream) {
  return start(
      make(CallKind::kBroadcast, buff, buff, count, raw(datatype), kNoOp, root, comm, stream),
      "ncclBcast");
}

ncclResult_t ncclReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
                        ncclRedOp_t op, int root, ncclComm_t comm, cudaStream_t stream) {
  return start(make(CallKind::kReduce, sendbuff, recvbuff, count, raw(datatype), raw(op), root,
                    comm, stream),
               "ncclReduce");
}

ncclResult_t ncclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount,
                           ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream) {
  return start(make(CallKind::kAllGather, sendbuff, recvbuff, sendcount, raw(datatype), kNoOp, 0,
                    comm, stream),
               "ncclAllGather");
}

ncclResult_t ncclReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount,
                               ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                               cudaStream_t stream) {
  return start(make(CallKind::kReduceScatter, sendbuff, recvbuff, recvcount, raw(datatype), raw(op),
                    0, comm, stream),
               "ncclReduceScatter");
}

ncclResult_t ncclAlltoAll(const void* sendbuff, void* recvbuff, size_t count,
                          ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream) {
  return start(
      make(CallKind::kAllToAll, sendbuff, recvbuff, count, raw(datatype), kNoOp, 0, comm, stream),
      "ncclAlltoAll");
}

ncclResult_t ncclGather(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
                        int root, ncclComm_t comm, cudaStream_t stream) {
  return start(
      make(CallKind::kGather, sendbuff, recvbuff, count, raw(datatype), kNoOp, root, comm, stream),
      "ncclGather");
}

ncclResult_t ncclScatter(const void* sendbuff, void* recvbuff, size_t count,
                         ncclDataType_t datatype, int root, ncclComm_t comm, cudaStream_t stream) {
  return start(
      make(CallKind::kScatter, sendbuff, recvbuff, count, raw(datatype), kNoOp, root, comm, stream),
      "ncclScatter");
}

ncclResult_t ncclSend(const void* sendbuff, size_t count, ncclDataType_t datatype, int peer,
                      ncclComm_t comm, cudaStream_t stream) {
  return start(
      make(CallKind::kSend, sendbuff, nullptr, count, raw(datatype), kNoOp, peer, comm, stream),
      "ncclSend");
}

ncclResult_t ncclRecv(void* recvbuff, size_t count, ncclDataType_t datatype, int peer,
                      ncclComm_t comm, cudaStream_t stream) {
  return start(
      make(CallKind::kRecv, nullptr, recvbuff, count, raw(datatype), kNoOp, peer, comm, stream),
      "ncclRecv");
}

ncclResult_t ncclGroupStart(void) {
  ++loom::nccl::tGroup.depth;
  return ncclSuccess;
}

ncclResult_t ncclGroupEnd(void) {
  return loom::nccl::groupEnd(nullptr);
}

ncclResult_t ncclGroupSimulateEnd(ncclSimInfo_t* simInfo) {
  if (!simInfo || simInfo->magic != 0x74685283 ||
      simInfo->size < offsetof(ncclSimInfo_t, estimatedTime) + sizeof(float))
    return fail(ncclInvalidArgument,
                "ncclGroupSimulateEnd: simInfo is NULL or was not initialised with "
                "NCCL_SIM_INFO_INITIALIZER");
  simInfo->estimatedTime = 0;
  return loom::nccl::groupEnd(simInfo);
}

}  // extern "C"

NCCL_LOOM_ALIAS(ncclAllReduce);
NCCL_LOOM_ALIAS(ncclBroadcast);
NCCL_LOOM_ALIAS(ncclBcast);
NCCL_LOOM_ALIAS(ncclReduce);
NCCL_LOOM_ALIAS(ncclAllGather);
NCCL_LOOM_ALIAS(ncclReduceScatter);
NCCL_LOOM_ALIAS(ncclAlltoAll);
NCCL_LOOM_ALIAS(ncclGather);
NCCL_LOOM_ALIAS(ncclScatter);
NCCL_LOOM_ALIAS(ncclSend);
NCCL_LOOM_ALIAS(ncclRecv);
NCCL_LOOM_ALIAS(ncclGroupStart);
NCCL_LOOM_ALIAS(ncclGroupEnd);
NCCL_LOOM_ALIAS(ncclGroupSimulateEnd);
