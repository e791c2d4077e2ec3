// Creating, querying and ending communicators (nccl.h) over loom's C API.
#include <cstring>
#include <vector>

#include "comm.h"
#include "group.h"

using loom::nccl::CallScope;
using loom::nccl::CommState;
using loom::nccl::fail;
using loom::nccl::fromLoom;

namespace {

std::string rangeText(int v, int n) {
  return std::to_string(v) + " is out of range [0, " + std::to_string(n) + ")";
}

// Runs an init job now, on a worker (non-blocking) or at the outermost ncclGroupEnd.
ncclResult_t launchInit(ncclComm* c, std::function<ncclResult_t(ncclComm*)> job) {
  if (loom::nccl::inGroup()) {
    loom::nccl::deferInit(c, std::move(job));
    return ncclSuccess;
  }
  return loom::nccl::startInit(c, !c->blocking, std::move(job));
}

// Frees a handle that never became usable (a blocking init that failed).
void discard(ncclComm* c) {
  loom::nccl::unregisterComm(c);
  if (c->loom) (void)loomCommDestroy(c->loom);
  delete c;
}

ncclResult_t initRank(const char* fn, ncclComm_t* comm, int nranks, const ncclUniqueId& commId,
                      int rank, const ncclConfig_t* config) {
  if (!comm) return fail(ncclInvalidArgument, std::string(fn) + ": comm is NULL");
  *comm = nullptr;
  if (nranks <= 0)
    return fail(ncclInvalidArgument,
                std::string(fn) + ": nranks must be positive, got " + std::to_string(nranks));
  if (rank < 0 || rank >= nranks)
    return fail(ncclInvalidArgument, std::string(fn) + ": rank " + rangeText(rank, nranks));
  bool blocking = true;
  std::string name;
  ncclResult_t r = loom::nccl::readConfig(config, fn, &blocking, &name);
  if (r != ncclSuccess) return r;
  ncclComm* c = loom::nccl::newComm(blocking, name);
  c->cudaDevice = loom::nccl::currentCudaDevice();
  loomUniqueId id;
  static_assert(sizeof(id.internal) == sizeof(commId.internal));
  std::memcpy(id.internal, commId.internal, sizeof(id.internal));
  r = launchInit(c, [id, nranks, rank, fn](ncclComm* self) {
    loomConfig_t cfg = loom::nccl::loomConfigFor(self->name);
    return fromLoom(loomCommInitRankConfig(&self->loom, nranks, id, rank, &cfg), fn);
  });
  if (r != ncclSuccess && r != ncclInProgress) {
    discard(c);
    return r;
  }
  *comm = c;
  return r;
}

// The configuration of a child (split, shrink): its own, or its parent's when config is NULL.
ncclResult_t childConfig(const ncclComm* parent, const ncclConfig_t* config, const char* fn,
                         bool* blocking, std::string* name) {
  *blocking = parent->blocking;
  *name = parent->name;
  return loom::nccl::readConfig(config, fn, blocking, name);
}

ncclResult_t checkParent(ncclComm* comm, const char* fn, ncclComm_t* newcomm) {
  ncclResult_t r = loom::nccl::checkComm(comm, fn, true);
  if (r != ncclSuccess) return r;
  if (!newcomm) return fail(ncclInvalidArgument, std::string(fn) + ": newcomm is NULL");
  *newcomm = nullptr;
  if (comm->revoked)
    return fail(ncclInvalidUsage, std::string(fn) +
                                      ": the communicator was revoked; loom cannot split or "
                                      "shrink a revoked communicator (see docs/NCCL.md)");
  return ncclSuccess;
}

// Shrink: the surviving ranks make a new communicator. The first survivor creates a unique id
// and sends it to the others over the parent (Send/Recv touch only the survivors), then every
// survivor joins the new communicator.
ncclResult_t shrinkJob(ncclComm* self, loomComm_t parent, const std::vector<int>& survivors,
                       int myOldRank) {
  const int leader = survivors[0];
  int newRank = 0;
  while (survivors[newRank] != myOldRank)
    ++newRank;
  loomUniqueId id;
  std::memset(&id, 0, sizeof(id));
  if (myOldRank == leader) {
    loomResult_t r = loomGetUniqueId(&id);
    if (r != loomSuccess) return fromLoom(r, "ncclCommShrink");
    (void)loomGroupStart();
    for (size_t i = 1; i < survivors.size() && r == loomSuccess; ++i)
      r = loomSend(&id, sizeof(id), loomUint8, survivors[i], parent, nullptr);
    loomResult_t end = loomGroupEnd();
    if (r == loomSuccess) r = end;
    if (r != loomSuccess) return fromLoom(r, "ncclCommShrink (sending the new unique id)");
  } else {
    loomResult_t r = loomRecv(&id, sizeof(id), loomUint8, leader, parent, nullptr);
    if (r != loomSuccess) return fromLoom(r, "ncclCommShrink (receiving the new unique id)");
  }
  loomConfig_t cfg = loom::nccl::loomConfigFor(self->name);
  return fromLoom(
      loomCommInitRankConfig(&self->loom, static_cast<int>(survivors.size()), id, newRank, &cfg),
      "ncclCommShrink");
}

}  // namespace

extern "C" {

ncclResult_t ncclGetVersion(int* version) {
  if (!version) return fail(ncclInvalidArgument, "ncclGetVersion: version is NULL");
  *version = NCCL_VERSION_CODE;
  return ncclSuccess;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId* uniqueId) {
  if (!uniqueId) return fail(ncclInvalidArgument, "ncclGetUniqueId: uniqueId is NULL");
  loomUniqueId id;
  loomResult_t r = loomGetUniqueId(&id);
  if (r != loomSuccess) return fromLoom(r, "ncclGetUniqueId");
  std::memcpy(uniqueId->internal, id.internal, sizeof(uniqueId->internal));
  return ncclSuccess;
}

ncclResult_t ncclCommInitRankConfig(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank,
                                    ncclConfig_t* config) {
  return initRank("ncclCommInitRankConfig", comm, nranks, commId, rank, config);
}

ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank) {
  return initRank("ncclCommInitRank", comm, nranks, commId, rank, nullptr);
}

ncclResult_t ncclCommInitRankScalable(ncclComm_t* newcomm, int nranks, int myrank, int nId,
                                      ncclUniqueId* commIds, ncclConfig_t* config) {
  if (nId < 1 || !commIds)
    return fail(ncclInvalidArgument,
                "ncclCommInitRankScalable: need nId >= 1 unique ids, got nId = " +
                    std::to_string(nId) + (commIds ? "" : " and commIds = NULL"));
  // loom's rendezvous root serves every rank, so the first id is enough; the others (created
  // by other ranks to spread NCCL's bootstrap load) are not contacted.
  return initRank("ncclCommInitRankScalable", newcomm, nranks, commIds[0], myrank, config);
}

ncclResult_t ncclCommInitAll(ncclComm_t* comm, int ndev, const int* devlist) {
  if (!comm) return fail(ncclInvalidArgument, "ncclCommInitAll: comm is NULL");
  if (ndev <= 0)
    return fail(ncclInvalidArgument,
                "ncclCommInitAll: ndev must be positive, got " + std::to_string(ndev));
  for (int i = 0; devlist && i < ndev; ++i)
    if (devlist[i] < 0)
      return fail(ncclInvalidArgument, "ncclCommInitAll: devlist[" + std::to_string(i) + "] = " +
                                           std::to_string(devlist[i]) + " is not a device");
  std::vector<loomComm_t> all(static_cast<size_t>(ndev));
  loomResult_t r = loomCommInitAll(all.data(), ndev, nullptr, nullptr);
  if (r != loomSuccess) return fromLoom(r, "ncclCommInitAll");
  const bool cuda = loom::nccl::currentCudaDevice() >= 0;
  for (int i = 0; i < ndev; ++i) {
    ncclComm* c = loom::nccl::newComm(true, "");
    c->loom = all[static_cast<size_t>(i)];
    c->cudaDevice = devlist ? devlist[i] : (cuda ? i : -1);
    loom::nccl::finishInit(c, ncclSuccess);
    comm[i] = c;
  }
  return ncclSuccess;
}

ncclResult_t ncclCommSplit(ncclComm_t comm, int color, int key, ncclComm_t* newcomm,
                           ncclConfig_t* config) {
  ncclResult_t r = checkParent(comm, "ncclCommSplit", newcomm);
  if (r != ncclSuccess) return r;
  if (color < 0 && color != NCCL_SPLIT_NOCOLOR)
    return fail(ncclInvalidArgument, "ncclCommSplit: color " + std::to_string(color) +
                                         " must be >= 0 or NCCL_SPLIT_NOCOLOR");
  bool blocking;
  std::string name;
  r = childConfig(comm, config, "ncclCommSplit", &blocking, &name);
  if (r != ncclSuccess) return r;
  loomComm_t parent = comm->loom;
  auto job = [parent, color, key](ncclComm* self) {
    loomConfig_t cfg = loom::nccl::loomConfigFor(self->name);
    return fromLoom(loomCommSplit(parent, color, key, &self->loom, &cfg), "ncclCommSplit");
  };
  const bool noColor = color == NCCL_SPLIT_NOCOLOR;
  if (noColor && !loom::nccl::inGroup()) {
    // Takes part in the split and gets no communicator; nothing to hand back, so no worker.
    ncclComm ghost;
    ghost.name = name;
    return job(&ghost);
  }
  ncclComm* c = loom::nccl::newComm(blocking, name);
  c->cudaDevice = comm->cudaDevice;
  if (noColor) {  // in a group: runs with the others at ncclGroupEnd, freed there
    loom::nccl::unregisterComm(c);
    c->ghost = true;
  }
  r = launchInit(c, job);
  if (r != ncclSuccess && r != ncclInProgress) {
    discard(c);
    return r;
  }
  if (!noColor) *newcomm = c;
  return r;
}

ncclResult_t ncclCommShrink(ncclComm_t comm, int* excludeRanksList, int excludeRanksCount,
                            ncclComm_t* newcomm, ncclConfig_t* config, int shrinkFlags) {
  ncclResult_t r = checkParent(comm, "ncclCommShrink", newcomm);
  if (r != ncclSuccess) return r;
  if (shrinkFlags == NCCL_SHRINK_ABORT)
    return fail(ncclInvalidUsage,
                "ncclCommShrink: NCCL_SHRINK_ABORT is not supported (loom cannot yet reuse a "
                "communicator whose operations it aborted); use NCCL_SHRINK_DEFAULT on a "
                "healthy communicator");
  if (shrinkFlags != NCCL_SHRINK_DEFAULT)
    return fail(ncclInvalidArgument,
                "ncclCommShrink: unknown shrinkFlags " + std::to_string(shrinkFlags));
  if (excludeRanksCount < 0 || (excludeRanksCount > 0 && !excludeRanksList))
    return fail(ncclInvalidArgument, "ncclCommShrink: excludeRanksList is NULL or its count (" +
                                         std::to_string(excludeRanksCount) + ") is negative");
  std::vector<bool> excluded(static_cast<size_t>(comm->nranks), false);
  for (int i = 0; i < excludeRanksCount; ++i) {
    const int x = excludeRanksList[i];
    if (x < 0 || x >= comm->nranks || excluded[static_cast<size_t>(x)])
      return fail(ncclInvalidArgument, "ncclCommShrink: excluded rank " + std::to_string(x) +
                                           " is out of range or listed twice");
    excluded[static_cast<size_t>(x)] = true;
  }
  if (excluded[static_cast<size_t>(comm->rank)])
    return fail(ncclInvalidArgument, "ncclCommShrink: rank " + std::to_string(comm->rank) +
                                         " is in excludeRanksList; excluded ranks must not "
                                         "call ncclCommShrink");
  std::vector<int> survivors;
  for (int i = 0; i < comm->nranks; ++i)
    if (!excluded[static_cast<size_t>(i)]) survivors.push_back(i);
  bool blocking;
  std::string name;
  r = childConfig(comm, config, "ncclCommShrink", &blocking, &name);
  if (r != ncclSuccess) return r;
  ncclComm* c = loom::nccl::newComm(blocking, name);
  c->cudaDevice = comm->cudaDevice;
  loomComm_t parent = comm->loom;
  const int me = comm->rank;
  r = launchInit(c, [parent, survivors, me](ncclComm* self) {
    return shrinkJob(self, parent, survivors, me);
  });
  if (r != ncclSuccess && r != ncclInProgress) {
    discard(c);
    return r;
  }
  *newcomm = c;
  return r;
}

ncclResult_t ncclCommFinalize(ncclComm_t comm) {
  ncclResult_t r = loom::nccl::checkComm(comm, "ncclCommFinalize", true);
  if (r != ncclSuccess) return r;
  if (comm->revoked)
    return fail(ncclInvalidUsage, "ncclCommFinalize: the communicator was revoked");
  {
    std::lock_guard<std::mutex> lock(comm->mu);
    comm->finalized = true;
  }
  return comm->blocking ? loom::nccl::waitWork(comm) : loom::nccl::pollWork(comm);
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (comm == nullptr) return ncclSuccess;
  ncclResult_t r = loom::nccl::checkComm(comm, "ncclCommDestroy", false);
  if (r != ncclSuccess) return r;
  loom::nccl::joinWorker(comm);
  loom::nccl::unregisterComm(comm);
  loomResult_t lr = loomSuccess;
  if (comm->loom) {
    if (comm->revoked) {
      lr = loomCommAbort(comm->loom);
    } else {
      (void)loom::nccl::waitWork(comm);  // a failed operation was reported by its own call
      lr = loomCommDestroy(comm->loom);
    }
  }
  for (void* h : comm->registrations)
    operator delete(h);
  comm->magic = 0;
  delete comm;
  return fromLoom(lr, "ncclCommDestroy");
}

ncclResult_t ncclCommAbort(ncclComm_t comm) {
  if (comm == nullptr) return ncclSuccess;
  ncclResult_t r = loom::nccl::checkComm(comm, "ncclCommAbort", false);
  if (r != ncclSuccess) return r;
  loom::nccl::unregisterComm(comm);  // new calls now fail; calls in flight end with Aborted
  loom::nccl::joinWorker(comm);      // an init cannot be interrupted; it is bounded by its timeout
  if (comm->loom) (void)loomCommAbortSignalSafe(comm->loom);
  while (comm->activeCalls.load() > 0)
    std::this_thread::yield();
  comm->pending.clear();  // each work ends with loomAborted and is freed
  if (comm->loom) (void)loomCommAbort(comm->loom);
  for (void* h : comm->registrations)
    operator delete(h);
  comm->magic = 0;
  delete comm;
  return ncclSuccess;
}

ncclResult_t ncclCommRevoke(ncclComm_t comm, int revokeFlags) {
  ncclResult_t r = loom::nccl::checkComm(comm, "ncclCommRevoke", true);
  if (r != ncclSuccess) return r;
  if (revokeFlags != NCCL_REVOKE_DEFAULT)
    return fail(ncclInvalidArgument,
                "ncclCommRevoke: revokeFlags must be NCCL_REVOKE_DEFAULT (0), got " +
                    std::to_string(revokeFlags));
  // Ends every pending operation (they fail with ncclInvalidUsage: aborted) and every later one.
  (void)loomCommAbortSignalSafe(comm->loom);
  std::lock_guard<std::mutex> lock(comm->mu);
  comm->revoked = true;
  return ncclSuccess;
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* asyncError) {
  ncclResult_t r = loom::nccl::checkComm(comm, "ncclCommGetAsyncError", false);
  if (r != ncclSuccess) return r;
  if (!asyncError) return fail(ncclInvalidArgument, "ncclCommGetAsyncError: asyncError is NULL");
  switch (comm->state.load()) {
    case CommState::kInitializing:
      *asyncError = ncclInProgress;
      return ncclSuccess;
    case CommState::kFailed:
      *asyncError = comm->initResult;
      loom::nccl::setLastError(comm->initError);
      return ncclSuccess;
    case CommState::kReady:
      break;
  }
  CallScope scope(comm);
  ncclResult_t work = loom::nccl::pollWork(comm);
  if (work != ncclSuccess) {
    *asyncError = work;
    return ncclSuccess;
  }
  loomResult_t sticky = loomSuccess;
  if (comm->loom && loomCommGetAsyncError(comm->loom, &sticky) == loomSuccess &&
      sticky != loomSuccess)
    loom::nccl::setLastError(loomGetLastError(nullptr));
  *asyncError = loom::nccl::toNccl(sticky);
  return ncclSuccess;
}

ncclResult_t ncclCommCount(const ncclComm_t comm, int* count) {
  ncclResult_t r = loom::nccl::checkComm(comm, "ncclCommCount", true);
  if (r != ncclSuccess) return r;
  if (!count) return fail(ncclInvalidArgument, "ncclCommCount: count is NULL");
  *count = comm->nranks;
  return ncclSuccess;
}

ncclResult_t ncclCommUserRank(const ncclComm_t comm, int* rank) {
  ncclResult_t r = loom::nccl::checkComm(comm, "ncclCommUserRank", true);
  if (r != ncclSuccess) return r;
  if (!rank) return fail(ncclInvalidArgument, "ncclCommUserRank: rank is NULL");
  *rank = comm->rank;
  return ncclSuccess;
}

ncclResult_t ncclCommCuDevice(const ncclComm_t comm, int* device) {
  ncclResult_t r = loom::nccl::checkComm(comm, "ncclCommCuDevice", true);
  if (r != ncclSuccess) return r;
  if (!device) return fail(ncclInvalidArgument, "ncclCommCuDevice: device is NULL");
  if (comm->cudaDevice < 0)
    return fail(ncclInvalidUsage,
                "ncclCommCuDevice: this communicator has no CUDA device (the process had no "
                "current CUDA context when it was created; loom runs it on host memory)");
  *device = comm->cudaDevice;
  return ncclSuccess;
}

const char* ncclGetErrorString(ncclResult_t result) {
  switch (loom::nccl::rawValue(result)) {
    case ncclSuccess:
      return "no error";
    case ncclUnhandledCudaError:
      return "unhandled cuda error (ncclGetLastError has the details)";
    case ncclSystemError:
      return "unhandled system error (ncclGetLastError has the details; NCCL_DEBUG=INFO logs more)";
    case ncclInternalError:
      return "internal error - please report this issue to the loom developers";
    case ncclInvalidArgument:
      return "invalid argument (ncclGetLastError has the details)";
    case ncclInvalidUsage:
      return "invalid usage (ncclGetLastError has the details)";
    case ncclRemoteError:
      return "remote process exited, did not answer in time, or there was a network error";
    case ncclInProgress:
      return "NCCL operation in progress";
    default:
      return "unknown result code";
  }
}

const char* ncclGetLastError(ncclComm_t) {
  return loom::nccl::lastError();
}

void ncclResetDebugInit(void) {
  loom::nccl::setLastError(
      "ncclResetDebugInit: no effect; loom reads its logging settings (NCCL_DEBUG, LOOM_DEBUG) "
      "once per process");
}

}  // extern "C"

NCCL_LOOM_ALIAS(ncclGetVersion);
NCCL_LOOM_ALIAS(ncclGetUniqueId);
NCCL_LOOM_ALIAS(ncclCommInitRankConfig);
NCCL_LOOM_ALIAS(ncclCommInitRank);
NCCL_LOOM_ALIAS(ncclCommInitRankScalable);
NCCL_LOOM_ALIAS(ncclCommInitAll);
NCCL_LOOM_ALIAS(ncclCommSplit);
NCCL_LOOM_ALIAS(ncclCommShrink);
NCCL_LOOM_ALIAS(ncclCommFinalize);
NCCL_LOOM_ALIAS(ncclCommDestroy);
NCCL_LOOM_ALIAS(ncclCommAbort);
NCCL_LOOM_ALIAS(ncclCommRevoke);
NCCL_LOOM_ALIAS(ncclCommGetAsyncError);
NCCL_LOOM_ALIAS(ncclCommCount);
NCCL_LOOM_ALIAS(ncclCommUserRank);
NCCL_LOOM_ALIAS(ncclCommCuDevice);
NCCL_LOOM_ALIAS(ncclGetErrorString);
NCCL_LOOM_ALIAS(ncclGetLastError);
NCCL_LOOM_ALIAS(ncclResetDebugInit);
