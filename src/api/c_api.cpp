// The C ABI (include/loom/loom.h): a thin shim. Arguments are checked here (validate.h); the
// work is done by the runtime. Every failure is classified and logged once, here, and its
// message kept for loomGetLastError.
#include <array>
#include <cstring>
#include <thread>
#include <vector>

#include "algorithms/planner.h"
#include "api/handles.h"
#include "api/validate.h"
#include "base/cuda.h"
#include "base/log.h"
#include "bootstrap/unique_id.h"
#include "loom_features.h"
#include "runtime/group.h"
#include "runtime/init.h"

using loom::Code;
using loom::Config;
using loom::Result;
using loom::Status;
using loom::algo::Collective;
using loom::runtime::OpDesc;

static_assert(sizeof(loomUniqueId) == loom::bootstrap::kUniqueIdBytes);
static_assert(static_cast<int>(Code::kAborted) == loomAborted);
static_assert(static_cast<int>(Collective::kBarrier) == loomCollBarrier);

namespace {

thread_local std::string tLastError;

loomResult_t fail(const Status& s) {
  tLastError = s.toString();
  if (s.code() == Code::kInvalidArgument || s.code() == Code::kInvalidUsage)
    LOOM_LOG(kWarn, kApi) << tLastError;
  return static_cast<loomResult_t>(s.code());
}

loomResult_t done(const Status& s) {
  return s.isOk() ? loomSuccess : fail(s);
}

Result<Config> resolveConfig(const loomConfig_t* c, const Config* inherited, std::string* name) {
  Config config;
  if (inherited) {
    config = *inherited;
  } else {
    LOOM_ASSIGN_OR_RETURN(config, Config::fromEnvironment(loom::Environment::process()));
  }
  if (c == nullptr) return config;
  if (c->magic != LOOM_CONFIG_MAGIC || c->size < sizeof(loomConfig_t))
    return loom::invalidArgument(
        "config was not initialised with LOOM_CONFIG_INITIALIZER (bad size or magic)");
  if (c->blocking != LOOM_CONFIG_UNDEF_INT && c->blocking != 1)
    return loom::invalidUsage("config.blocking = " + std::to_string(c->blocking) +
                              ": non-blocking communicators are not supported yet");
  if (c->timeoutMs != LOOM_CONFIG_UNDEF_INT) {
    if (c->timeoutMs <= 0)
      return loom::invalidArgument("config.timeoutMs must be positive, got " +
                                   std::to_string(c->timeoutMs));
    config.timeoutMs = c->timeoutMs;
  }
  if (c->transport) LOOM_RETURN_IF_ERROR(config.set("LOOM_TRANSPORT", c->transport));
  if (c->hostId) config.hostId = c->hostId;
  if (c->checkMode != LOOM_CONFIG_UNDEF_INT) config.check = c->checkMode != 0;
  if (c->algo) config.algo = c->algo;
  if (c->commName && name) *name = c->commName;
  if (config.transport != "auto" && config.transport != "loopback" && config.transport != "shm" &&
      config.transport != "socket" && config.transport != "ibverbs")
    return loom::invalidArgument("transport '" + config.transport +
                                 "' is not auto, loopback, shm, socket or ibverbs");
  return config;
}

loomComm* wrap(std::unique_ptr<loom::runtime::Communicator> c) {
  auto* h = new loomComm();
  h->comm = std::move(c);
  loom::api::registerComm(h);
  return h;
}

loomResult_t runOp(const char* fn, loomComm* comm, OpDesc op, loomDataType_t datatype, int redop,
                   loomStream_t stream) {
  loom::api::DeviceCall device;
  Status s = loom::api::checkOp(comm, fn, &op, datatype, redop, stream, &device);
  if (!s.isOk()) return fail(s);
  loom::api::CallScope scope(comm);
  loom::log::RankScope rank(comm->comm->rank());
  if (op.op.deviceScalar && !device.device)
    return fail(loom::invalidUsage(std::string(fn) +
                                   ": the PreMulSum op's scalar is in device memory, so the call "
                                   "needs device buffers and a stream"));
  if (!device.device) return done(loom::runtime::submit(comm->comm.get(), op));
  if (Status e = comm->comm->asyncError(); !e.isOk()) return done(e);
  // Ranks that are threads of this process on one GPU read each other's buffers
  // (LOOM_CUDA_DIRECT, device_direct.h); outside groups only.
  if (loom::runtime::groupDepth() == 0 && !op.op.deviceScalar &&
      loom::runtime::DeviceDirect::covers(op))
    if (loom::runtime::DeviceDirect* direct = comm->comm->deviceDirect()) {
      bool handled = false;
      Status d = direct->run(op, stream, device.gpu,
                             loom::Deadline::afterMs(comm->comm->config().timeoutMs),
                             comm->comm->abortFlagPtr(), &handled);
      if (!d.isOk()) {
        if (d.code() != loom::Code::kInvalidArgument && d.code() != loom::Code::kInvalidUsage)
          comm->comm->setAsyncError(d);
        return fail(d.withContext(fn));
      }
      if (handled) {
        comm->comm->countCall(op.collective, device.sendBytes, device.recvBytes);
        return loomSuccess;
      }
    }
  // Ranks on one host read each other's CUDA IPC windows (LOOM_CUDA_IPC, device_ipc.h);
  // outside groups only. The stage carries no buffers: it orders the worker's run on the stream.
  if (loom::runtime::groupDepth() == 0 && loom::runtime::DeviceIpc::covers(op))
    if (comm->comm->deviceIpc()) {
      loom::cuda::StreamStage::Buffers order;
      order.device = device.gpu;
      auto stage = loom::cuda::StreamStage::create(stream, order);
      if (!stage.isOk()) return done(Status(stage.status()).withContext(fn));
      comm->comm->countCall(op.collective, device.sendBytes, device.recvBytes);
      return done(
          loom::runtime::submitDeviceIpc(comm->comm.get(), op, device.gpu, std::move(*stage)));
    }
  // Device buffers: the collective runs on pinned copies, ordered on the stream (cuda.h).
  loom::cuda::StreamStage::Buffers buffers{
      op.sendbuf,
      device.sendBytes,
      op.recvbuf,
      device.recvBytes,
      device.gpu,
      op.op.deviceScalar,
      op.op.deviceScalar ? loom::dataTypeSize(op.dtype) : 0,
      comm->comm->stageBudget(),
      loom::runtime::groupDepth() == 0,  // a group's calls cannot finish before it ends
      loom::Deadline::afterMs(comm->comm->config().timeoutMs),
      comm->comm->abortFlagPtr()};
  auto stage = loom::cuda::StreamStage::create(stream, buffers);
  if (!stage.isOk()) {
    const loom::Code c = stage.status().code();
    if (c == loom::Code::kTimeout || c == loom::Code::kAborted)
      comm->comm->setAsyncError(stage.status());
    return done(Status(stage.status()).withContext(fn));
  }
  op.sendbuf = (*stage)->hostSend();
  op.recvbuf = (*stage)->hostRecv();
  if (op.op.deviceScalar) op.op.scalarAt = (*stage)->hostScalar();
  return done(loom::runtime::submitStaged(comm->comm.get(), op, std::move(*stage)));
}

OpDesc makeOp(Collective c, const void* send, void* recv, size_t count, int root = 0,
              int peer = -1) {
  OpDesc op;
  op.collective = c;
  op.sendbuf = send;
  op.recvbuf = recv;
  op.count = count;
  op.root = root;
  op.peer = peer;
  return op;
}

}  // namespace

extern "C" {

loomResult_t loomGetVersion(int* version) {
  if (!version) return fail(loom::invalidArgument("loomGetVersion: version is NULL"));
  *version = LOOM_VERSION_CODE;
  return loomSuccess;
}

const char* loomGetErrorString(loomResult_t result) {
  switch (result) {
    case loomSuccess:
      return "no error";
    case loomUnhandledCudaError:
      return "unhandled cuda error";
    case loomSystemError:
      return "unhandled system error (run with LOOM_DEBUG=INFO for details)";
    case loomInternalError:
      return "internal error - please report this issue";
    case loomInvalidArgument:
      return "invalid argument (loomGetLastError has the details)";
    case loomInvalidUsage:
      return "invalid usage (loomGetLastError has the details)";
    case loomRemoteError:
      return "remote process exited or there was a network error";
    case loomInProgress:
      return "operation in progress";
    case loomTimeout:
      return "timed out (LOOM_TIMEOUT_MS sets the deadline)";
    case loomAborted:
      return "communicator aborted";
    default:
      return "unknown result code";
  }
}

const char* loomGetLastError(loomComm_t) {
  return tLastError.c_str();
}

loomResult_t loomGetUniqueId(loomUniqueId* uniqueId) {
  if (!uniqueId) return fail(loom::invalidArgument("loomGetUniqueId: uniqueId is NULL"));
  Result<Config> config = resolveConfig(nullptr, nullptr, nullptr);
  if (!config.isOk()) return fail(config.status());
  Result<loom::bootstrap::UniqueId> id = loom::runtime::createUniqueId(*config);
  if (!id.isOk()) return fail(id.status());
  std::memset(uniqueId, 0, sizeof(*uniqueId));
  id->toBytes(reinterpret_cast<uint8_t*>(uniqueId->internal));
  return loomSuccess;
}

loomResult_t loomCommInitRankConfig(loomComm_t* comm, int nranks, loomUniqueId commId, int rank,
                                    loomConfig_t* config) {
  if (!comm) return fail(loom::invalidArgument("loomCommInitRank: comm is NULL"));
  *comm = nullptr;
  if (nranks <= 0)
    return fail(loom::invalidArgument("loomCommInitRank: nranks must be positive, got " +
                                      std::to_string(nranks)));
  if (rank < 0 || rank >= nranks)
    return fail(loom::invalidArgument("loomCommInitRank: rank " + std::to_string(rank) +
                                      " is out of range [0, " + std::to_string(nranks) + ")"));
  Result<loom::bootstrap::UniqueId> id =
      loom::bootstrap::UniqueId::fromBytes(reinterpret_cast<const uint8_t*>(commId.internal));
  if (!id.isOk()) return fail(id.status().withContext("loomCommInitRank"));
  std::string name;
  Result<Config> cfg = resolveConfig(config, nullptr, &name);
  if (!cfg.isOk()) return fail(cfg.status());
  Result<std::unique_ptr<loom::runtime::Communicator>> c =
      loom::runtime::initRank(*id, rank, nranks, *cfg, name);
  if (!c.isOk()) return fail(c.status());
  *comm = wrap(std::move(c).value());
  return loomSuccess;
}

loomResult_t loomCommInitRank(loomComm_t* comm, int nranks, loomUniqueId commId, int rank) {
  return loomCommInitRankConfig(comm, nranks, commId, rank, nullptr);
}

loomResult_t loomCommInitAll(loomComm_t* comms, int nranks, const int* devlist,
                             loomConfig_t* config) {
  if (!comms) return fail(loom::invalidArgument("loomCommInitAll: comms is NULL"));
  if (nranks <= 0)
    return fail(loom::invalidArgument("loomCommInitAll: nranks must be positive, got " +
                                      std::to_string(nranks)));
  if (devlist)
    return fail(
        loom::invalidUsage("loomCommInitAll: devlist given, but this build of loom has "
                           "no GPU path yet (pass NULL for host-only ranks)"));
  std::string name;
  Result<Config> cfg = resolveConfig(config, nullptr, &name);
  if (!cfg.isOk()) return fail(cfg.status());
  auto all = loom::runtime::initAll(nranks, *cfg, name);
  if (!all.isOk()) return fail(all.status());
  for (int r = 0; r < nranks; ++r)
    comms[r] = wrap(std::move((*all)[r]));
  return loomSuccess;
}

loomResult_t loomCommInitEnv(loomComm_t* comm, loomConfig_t* config) {
  if (!comm) return fail(loom::invalidArgument("loomCommInitEnv: comm is NULL"));
  *comm = nullptr;
  std::string name;
  Result<Config> cfg = resolveConfig(config, nullptr, &name);
  if (!cfg.isOk()) return fail(cfg.status());
  auto c = loom::runtime::initFromEnvironment(loom::Environment::process(), *cfg, name);
  if (!c.isOk()) return fail(c.status());
  *comm = wrap(std::move(c).value());
  return loomSuccess;
}

loomResult_t loomCommSplit(loomComm_t comm, int color, int key, loomComm_t* newcomm,
                           loomConfig_t* config) {
  Status s = loom::api::checkComm(comm, "loomCommSplit");
  if (!s.isOk()) return fail(s);
  if (!newcomm) return fail(loom::invalidArgument("loomCommSplit: newcomm is NULL"));
  *newcomm = nullptr;
  if (color < 0 && color != LOOM_SPLIT_NOCOLOR)
    return fail(loom::invalidArgument("loomCommSplit: color " + std::to_string(color) +
                                      " must be >= 0 or LOOM_SPLIT_NOCOLOR"));
  if (loom::runtime::groupDepth() > 0)
    return fail(loom::invalidUsage("loomCommSplit inside a group is not supported"));
  std::string name;
  Result<Config> cfg = resolveConfig(config, &comm->comm->config(), &name);
  if (!cfg.isOk()) return fail(cfg.status());
  loom::api::CallScope scope(comm);
  loom::log::RankScope rank(comm->comm->rank());
  Status err = comm->comm->asyncError();
  if (!err.isOk()) return fail(err.withContext("loomCommSplit on a failed communicator"));
  Status q = comm->comm->quiesce();
  if (!q.isOk()) return fail(q);
  auto child = comm->comm->split(color, key, *cfg);
  if (!child.isOk()) return fail(child.status());
  if (*child) *newcomm = wrap(std::move(child).value());
  return loomSuccess;
}

loomResult_t loomCommDestroy(loomComm_t comm) {
  Status s = loom::api::checkComm(comm, "loomCommDestroy");
  if (!s.isOk()) return fail(s);
  loom::runtime::forgetGroupOps(comm->comm.get());
  Status q = comm->comm->quiesce();
  loom::api::unregisterComm(comm);
  comm->magic = 0;
  delete comm;
  return done(q);
}

loomResult_t loomCommAbort(loomComm_t comm) {
  Status s = loom::api::checkComm(comm, "loomCommAbort");
  if (!s.isOk()) return fail(s);
  loom::api::unregisterComm(comm);  // new calls now fail; calls in flight end with Aborted
  comm->comm->abort();
  while (comm->activeCalls.load() > 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  loom::runtime::forgetGroupOps(comm->comm.get());
  comm->magic = 0;
  delete comm;
  return loomSuccess;
}

loomResult_t loomCommAbortSignalSafe(loomComm_t comm) {
  // No registry lookup (it locks) and no message (it allocates): only what a handler may do.
  if (!comm || comm->magic != loomComm::kMagic) return loomInvalidArgument;
  comm->comm->abortSignalSafe();
  return loomSuccess;
}

loomResult_t loomCommGetAsyncError(loomComm_t comm, loomResult_t* asyncError) {
  Status s = loom::api::checkComm(comm, "loomCommGetAsyncError");
  if (!s.isOk()) return fail(s);
  if (!asyncError) return fail(loom::invalidArgument("loomCommGetAsyncError: asyncError is NULL"));
  Status err = comm->comm->asyncError();
  *asyncError = static_cast<loomResult_t>(err.code());
  if (!err.isOk()) tLastError = err.toString();
  return loomSuccess;
}

loomResult_t loomCommCount(const loomComm_t comm, int* count) {
  Status s = loom::api::checkComm(comm, "loomCommCount");
  if (!s.isOk()) return fail(s);
  if (!count) return fail(loom::invalidArgument("loomCommCount: count is NULL"));
  *count = comm->comm->nranks();
  return loomSuccess;
}

loomResult_t loomCommUserRank(const loomComm_t comm, int* rank) {
  Status s = loom::api::checkComm(comm, "loomCommUserRank");
  if (!s.isOk()) return fail(s);
  if (!rank) return fail(loom::invalidArgument("loomCommUserRank: rank is NULL"));
  *rank = comm->comm->rank();
  return loomSuccess;
}

loomResult_t loomCommGetCounters(const loomComm_t comm, loomCounters_t* counters) {
  Status s = loom::api::checkComm(comm, "loomCommGetCounters");
  if (!s.isOk()) return fail(s);
  if (!counters) return fail(loom::invalidArgument("loomCommGetCounters: counters is NULL"));
  loom::runtime::Counters c = comm->comm->counters();
  for (int i = 0; i < loomNumColls; ++i) {
    counters->calls[i] = c.calls[i];
    counters->bytesSent[i] = c.bytesSent[i];
    counters->bytesRecv[i] = c.bytesRecv[i];
  }
  return loomSuccess;
}

namespace {

// The planner's choice for a call described by its arguments, as the runtime would make it (no
// peer is asked). `fn` names the API function in errors.
struct PlannedCall {
  loom::algo::CollectiveArgs args;
  loom::algo::Choice choice;
  const loom::algo::Algorithm* algorithm = nullptr;
};

Status planCall(const loomComm_t comm, const char* fn, loomCollective_t collective, size_t count,
                loomDataType_t datatype, int root, PlannedCall* out) {
  LOOM_RETURN_IF_ERROR(loom::api::checkComm(comm, fn));
  const std::string name = fn;
  if (collective < 0 || collective >= loomNumColls)
    return loom::invalidArgument(name + ": collective " + std::to_string(collective) +
                                 " is not a loomCollective_t");
  if (!loom::isValidDataType(datatype))
    return loom::invalidArgument(name + ": datatype " + std::to_string(datatype) +
                                 " is not a loomDataType_t");
  const loom::runtime::Communicator& c = *comm->comm;
  if (root < 0 || root >= c.nranks())
    return loom::invalidArgument(name + ": root/peer " + std::to_string(root) +
                                 " is out of range [0, " + std::to_string(c.nranks()) + ")");
  loom::algo::CollectiveArgs& args = out->args;
  args.collective = static_cast<Collective>(collective);
  args.count = count;
  args.nranks = c.nranks();
  args.root = root;
  args.peer = root;
  args.nchannels = c.config().nchannels > 0 ? static_cast<int>(c.config().nchannels) : 1;
  args.hosts = c.hostLayout();
  args.windowBytes = c.windowBytes();
  LOOM_ASSIGN_OR_RETURN(loom::algo::AlgoOverrides overrides,
                        loom::algo::parseAlgoOverrides(c.config().algo));
  const size_t elemBytes = loom::dataTypeSize(static_cast<loom::DataType>(datatype));
  LOOM_ASSIGN_OR_RETURN(out->algorithm,
                        loom::algo::chooseAlgorithm(args, elemBytes, overrides, c.costModel(),
                                                    c.planTopology(), &out->choice));
  return Status::ok();
}

}  // namespace

loomResult_t loomCommPredictTime(const loomComm_t comm, loomCollective_t collective, size_t count,
                                 loomDataType_t datatype, int root, double* microseconds) {
  if (!microseconds)
    return fail(loom::invalidArgument("loomCommPredictTime: microseconds is NULL"));
  PlannedCall call;
  Status s = planCall(comm, "loomCommPredictTime", collective, count, datatype, root, &call);
  if (!s.isOk()) return fail(s);
  const loom::runtime::Communicator& c = *comm->comm;
  *microseconds = count == 0 ? 0.0
                             : loom::algo::predictUs(*call.algorithm, call.args, call.choice.bytes,
                                                     c.costModel(), c.planTopology());
  return loomSuccess;
}

loomResult_t loomCommChosenAlgorithm(const loomComm_t comm, loomCollective_t collective,
                                     size_t count, loomDataType_t datatype, int root,
                                     const char** algorithm) {
  if (!algorithm) return fail(loom::invalidArgument("loomCommChosenAlgorithm: algorithm is NULL"));
  PlannedCall call;
  Status s = planCall(comm, "loomCommChosenAlgorithm", collective, count, datatype, root, &call);
  if (!s.isOk()) return fail(s);
  *algorithm = call.algorithm->name().data();
  return loomSuccess;
}

loomResult_t loomGetAlgorithms(loomCollective_t collective, const char* const** names, int* count) {
  if (!names || !count)
    return fail(loom::invalidArgument("loomGetAlgorithms: names or count is NULL"));
  if (collective < 0 || collective >= loomNumColls)
    return fail(loom::invalidArgument("loomGetAlgorithms: collective " +
                                      std::to_string(collective) + " is not a loomCollective_t"));
  // Built once: the registry's algorithms are static and their names are string literals.
  static const auto* table = [] {
    auto* t = new std::array<std::vector<const char*>, loomNumColls>();
    for (int c = 0; c < loomNumColls; ++c)
      for (const loom::algo::Algorithm* a : loom::algo::algorithmsFor(static_cast<Collective>(c)))
        (*t)[static_cast<size_t>(c)].push_back(a->name().data());
    return t;
  }();
  const std::vector<const char*>& list = (*table)[static_cast<size_t>(collective)];
  *names = list.data();
  *count = static_cast<int>(list.size());
  return loomSuccess;
}

loomResult_t loomRedOpCreatePreMulSum(loomRedOp_t* op, void* scalar, loomDataType_t datatype,
                                      loomScalarResidence_t residence, loomComm_t comm) {
  Status s = loom::api::checkComm(comm, "loomRedOpCreatePreMulSum");
  if (!s.isOk()) return fail(s);
  if (!op || !scalar)
    return fail(loom::invalidArgument("loomRedOpCreatePreMulSum: op or scalar is NULL"));
  if (!loom::isValidDataType(datatype))
    return fail(loom::invalidArgument("loomRedOpCreatePreMulSum: datatype " +
                                      std::to_string(datatype) + " is not a loomDataType_t"));
  if (residence != loomScalarHostImmediate && residence != loomScalarDevice)
    return fail(loom::invalidArgument("loomRedOpCreatePreMulSum: residence " +
                                      std::to_string(residence) +
                                      " is not a loomScalarResidence_t"));
  std::string noGpu;
  if (residence == loomScalarDevice && !loom::cuda::available(&noGpu))
    return fail(
        loom::invalidUsage("loomRedOpCreatePreMulSum: a device-resident scalar needs a "
                           "GPU, but " +
                           noGpu));
  loom::RedOp r;
  r.kind = loom::RedOpKind::kPreMulSum;
  if (residence == loomScalarDevice)
    r.deviceScalar = scalar;  // read by each call, ordered on its stream
  else
    std::memcpy(r.scalar, scalar, loom::dataTypeSize(static_cast<loom::DataType>(datatype)));
  std::lock_guard<std::mutex> lock(comm->opsMu);
  int id = comm->nextOp++;
  comm->preMulOps[id] = r;
  comm->preMulTypes[id] = static_cast<loom::DataType>(datatype);
  *op = static_cast<loomRedOp_t>(loomNumOps + id);
  return loomSuccess;
}

loomResult_t loomRedOpDestroy(loomRedOp_t op, loomComm_t comm) {
  Status s = loom::api::checkComm(comm, "loomRedOpDestroy");
  if (!s.isOk()) return fail(s);
  std::lock_guard<std::mutex> lock(comm->opsMu);
  if (op < loomNumOps || comm->preMulOps.erase(op - loomNumOps) == 0)
    return fail(loom::invalidArgument("loomRedOpDestroy: op " + std::to_string(op) +
                                      " is not a PreMulSum op created on this communicator"));
  comm->preMulTypes.erase(op - loomNumOps);
  return loomSuccess;
}

loomResult_t loomAllReduce(const void* sendbuff, void* recvbuff, size_t count,
                           loomDataType_t datatype, loomRedOp_t op, loomComm_t comm,
                           loomStream_t stream) {
  return runOp("loomAllReduce", comm, makeOp(Collective::kAllReduce, sendbuff, recvbuff, count),
               datatype, op, stream);
}

loomResult_t loomBroadcast(const void* sendbuff, void* recvbuff, size_t count,
                           loomDataType_t datatype, int root, loomComm_t comm,
                           loomStream_t stream) {
  return runOp("loomBroadcast", comm,
               makeOp(Collective::kBroadcast, sendbuff, recvbuff, count, root), datatype, -1,
               stream);
}

loomResult_t loomReduce(const void* sendbuff, void* recvbuff, size_t count, loomDataType_t datatype,
                        loomRedOp_t op, int root, loomComm_t comm, loomStream_t stream) {
  return runOp("loomReduce", comm, makeOp(Collective::kReduce, sendbuff, recvbuff, count, root),
               datatype, op, stream);
}

loomResult_t loomAllGather(const void* sendbuff, void* recvbuff, size_t sendcount,
                           loomDataType_t datatype, loomComm_t comm, loomStream_t stream) {
  return runOp("loomAllGather", comm, makeOp(Collective::kAllGather, sendbuff, recvbuff, sendcount),
               datatype, -1, stream);
}

loomResult_t loomReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount,
                               loomDataType_t datatype, loomRedOp_t op, loomComm_t comm,
                               loomStream_t stream) {
  return runOp("loomReduceScatter", comm,
               makeOp(Collective::kReduceScatter, sendbuff, recvbuff, recvcount), datatype, op,
               stream);
}

loomResult_t loomAllToAll(const void* sendbuff, void* recvbuff, size_t count,
                          loomDataType_t datatype, loomComm_t comm, loomStream_t stream) {
  return runOp("loomAllToAll", comm, makeOp(Collective::kAllToAll, sendbuff, recvbuff, count),
               datatype, -1, stream);
}

loomResult_t loomGather(const void* sendbuff, void* recvbuff, size_t sendcount,
                        loomDataType_t datatype, int root, loomComm_t comm, loomStream_t stream) {
  return runOp("loomGather", comm, makeOp(Collective::kGather, sendbuff, recvbuff, sendcount, root),
               datatype, -1, stream);
}

loomResult_t loomScatter(const void* sendbuff, void* recvbuff, size_t recvcount,
                         loomDataType_t datatype, int root, loomComm_t comm, loomStream_t stream) {
  return runOp("loomScatter", comm,
               makeOp(Collective::kScatter, sendbuff, recvbuff, recvcount, root), datatype, -1,
               stream);
}

loomResult_t loomSend(const void* sendbuff, size_t count, loomDataType_t datatype, int peer,
                      loomComm_t comm, loomStream_t stream) {
  return runOp("loomSend", comm, makeOp(Collective::kSend, sendbuff, nullptr, count, 0, peer),
               datatype, -1, stream);
}

loomResult_t loomRecv(void* recvbuff, size_t count, loomDataType_t datatype, int peer,
                      loomComm_t comm, loomStream_t stream) {
  return runOp("loomRecv", comm, makeOp(Collective::kRecv, nullptr, recvbuff, count, 0, peer),
               datatype, -1, stream);
}

loomResult_t loomBarrier(loomComm_t comm, loomStream_t stream) {
  return runOp("loomBarrier", comm, makeOp(Collective::kBarrier, nullptr, nullptr, 0), loomUint8,
               -1, stream);
}

loomResult_t loomGroupStart(void) {
  loom::runtime::groupStart();
  return loomSuccess;
}

loomResult_t loomGroupEnd(void) {
  return done(loom::runtime::groupEnd());
}

loomResult_t loomGroupEndAsync(loomWork_t* work) {
  if (!work) return fail(loom::invalidArgument("loomGroupEndAsync: work is NULL"));
  *work = nullptr;
  auto state = loom::runtime::groupEndAsync();
  if (!state.isOk()) return fail(state.status());
  *work = new loomWork{std::move(state).value()};
  return loomSuccess;
}

loomResult_t loomWorkWait(loomWork_t work, int64_t timeoutMs) {
  if (!work) return fail(loom::invalidArgument("loomWorkWait: work is NULL"));
  loom::Deadline d = timeoutMs < 0 ? loom::Deadline::never() : loom::Deadline::afterMs(timeoutMs);
  return done(work->state->wait(d));
}

loomResult_t loomWorkTest(loomWork_t work, int* isDone) {
  if (!work || !isDone) return fail(loom::invalidArgument("loomWorkTest: work or done is NULL"));
  Status s;
  *isDone = work->state->test(&s) ? 1 : 0;
  return *isDone ? done(s) : loomSuccess;
}

loomResult_t loomWorkFree(loomWork_t work) {
  if (!work) return loomSuccess;
  Status s = work->state->wait(loom::Deadline::never());
  delete work;
  return done(s);
}

}  // extern "C"
