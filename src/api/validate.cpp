#include "api/validate.h"

#include <cstring>
#include <string>

#include "base/cuda.h"

namespace loom::api {

namespace {

using algo::Collective;

std::string ptrText(const void* p) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%p", p);
  return buf;
}

Status checkDatatypeAndOp(loomComm* comm, const char* fn, runtime::OpDesc* op,
                          loomDataType_t datatype, int redop) {
  if (!isValidDataType(static_cast<int>(datatype)))
    return invalidArgument(std::string(fn) + ": datatype " + std::to_string(datatype) +
                           " is not a loomDataType_t (0.." + std::to_string(loomNumTypes - 1) +
                           ")");
  op->dtype = static_cast<DataType>(datatype);
  if (redop < 0) return Status::ok();
  if (redop < loomNumOps) {
    op->op.kind = static_cast<RedOpKind>(redop);
    return Status::ok();
  }
  std::lock_guard<std::mutex> lock(comm->opsMu);
  auto it = comm->preMulOps.find(redop - loomNumOps);
  if (it == comm->preMulOps.end())
    return invalidArgument(std::string(fn) + ": op " + std::to_string(redop) +
                           " is neither a built-in loomRedOp_t (0.." +
                           std::to_string(loomNumOps - 1) +
                           ") nor a PreMulSum op created on this communicator");
  if (comm->preMulTypes.at(redop - loomNumOps) != op->dtype)
    return invalidArgument(std::string(fn) + ": PreMulSum op " + std::to_string(redop) +
                           " was created for " +
                           dataTypeName(comm->preMulTypes.at(redop - loomNumOps)) +
                           " but the call uses " + dataTypeName(op->dtype));
  op->op = it->second;
  return Status::ok();
}

// The in-place layouts of the API (loom.h): where recvbuff may start relative to sendbuff.
bool isAllowedAlias(const runtime::OpDesc& op, int rank, size_t block) {
  const auto* s = static_cast<const char*>(op.sendbuf);
  const auto* r = static_cast<const char*>(op.recvbuf);
  switch (op.collective) {
    case Collective::kAllReduce:
    case Collective::kAllToAll:
    case Collective::kBroadcast:
    case Collective::kReduce:
      return s == r;
    case Collective::kAllGather:
      return s == r + rank * block;
    case Collective::kReduceScatter:
      return r == s + rank * block;
    case Collective::kGather:
      return s == r + op.root * block;
    case Collective::kScatter:
      return r == s + op.root * block;
    default:
      return false;
  }
}

// Host or device memory (base/cuda.h), decided once per call from the buffers themselves.
Status checkMemory(const char* fn, const runtime::OpDesc& op, size_t sendBytes, size_t recvBytes,
                   loomStream_t stream, DeviceCall* device) {
  *device = DeviceCall{};
  // A NULL stream is a host call until the process has used the GPU path (cuda::inUse()):
  // host-only programs never start CUDA and pay nothing here. A stream was checked by the
  // caller (a GPU is available).
  if (stream == nullptr && !cuda::inUse()) return Status::ok();
  const bool sendDev =
      sendBytes > 0 && cuda::pointerInfo(op.sendbuf).memory == cuda::Memory::kDevice;
  const bool recvDev =
      recvBytes > 0 && cuda::pointerInfo(op.recvbuf).memory == cuda::Memory::kDevice;
  const bool anyDev = sendDev || recvDev;
  if ((sendBytes > 0 && sendDev != anyDev) || (recvBytes > 0 && recvDev != anyDev))
    return invalidArgument(std::string(fn) + ": sendbuff is " + (sendDev ? "device" : "host") +
                           " memory but recvbuff is " + (recvDev ? "device" : "host") +
                           " memory; one call takes one kind");
  if (!anyDev && stream != nullptr && (sendBytes > 0 || recvBytes > 0))
    return invalidArgument(std::string(fn) +
                           ": a CUDA stream was given with host buffers (pass NULL as the stream "
                           "for host memory, or device buffers with the stream)");
  device->device = anyDev || stream != nullptr;
  device->sendBytes = sendBytes;
  device->recvBytes = recvBytes;
  if (anyDev) device->gpu = cuda::pointerInfo(sendDev ? op.sendbuf : op.recvbuf).device;
  return Status::ok();
}

}  // namespace

Status checkComm(const loomComm* comm, const char* fn) {
  if (comm == nullptr) return invalidArgument(std::string(fn) + ": comm is NULL");
  if (!isLive(comm))
    return invalidArgument(std::string(fn) + ": comm " + ptrText(comm) +
                           " is not a live communicator (destroyed, aborted or never created)");
  return Status::ok();
}

Status checkOp(loomComm* comm, const char* fn, runtime::OpDesc* op, loomDataType_t datatype,
               int redop, loomStream_t stream, DeviceCall* device) {
  LOOM_RETURN_IF_ERROR(checkComm(comm, fn));
  std::string noGpu;
  if (stream != nullptr && !cuda::available(&noGpu))
    return invalidUsage(std::string(fn) + ": a CUDA stream was given, but " + noGpu +
                        " (pass NULL for host buffers)");
  LOOM_RETURN_IF_ERROR(checkDatatypeAndOp(comm, fn, op, datatype, redop));
  const int rank = comm->comm->rank(), nranks = comm->comm->nranks();
  const bool rooted =
      op->collective == Collective::kBroadcast || op->collective == Collective::kReduce ||
      op->collective == Collective::kGather || op->collective == Collective::kScatter;
  if (rooted && (op->root < 0 || op->root >= nranks))
    return invalidArgument(std::string(fn) + ": root " + std::to_string(op->root) +
                           " is out of range [0, " + std::to_string(nranks) + ")");
  const bool p2p = op->collective == Collective::kSend || op->collective == Collective::kRecv;
  if (p2p && (op->peer < 0 || op->peer >= nranks))
    return invalidArgument(std::string(fn) + ": peer " + std::to_string(op->peer) +
                           " is out of range [0, " + std::to_string(nranks) + ")");
  size_t sendBytes, recvBytes;
  if (!runtime::bufferBytes(*op, rank, nranks, &sendBytes, &recvBytes) ||
      static_cast<uint64_t>(sendBytes) > (1ull << 62) || recvBytes > (1ull << 62))
    return invalidArgument(std::string(fn) + ": count " + std::to_string(op->count) + " of " +
                           dataTypeName(op->dtype) + " overflows the size of a buffer with " +
                           std::to_string(nranks) + " ranks");
  if (sendBytes > 0 && op->sendbuf == nullptr)
    return invalidArgument(std::string(fn) + ": sendbuff is NULL with count " +
                           std::to_string(op->count));
  if (recvBytes > 0 && op->recvbuf == nullptr)
    return invalidArgument(std::string(fn) + ": recvbuff is NULL with count " +
                           std::to_string(op->count));
  LOOM_RETURN_IF_ERROR(checkMemory(fn, *op, sendBytes, recvBytes, stream, device));
  if (sendBytes > 0 && recvBytes > 0) {
    const auto* s = static_cast<const char*>(op->sendbuf);
    const auto* r = static_cast<const char*>(op->recvbuf);
    const bool overlap = s < r + recvBytes && r < s + sendBytes;
    const size_t block = op->count * dataTypeSize(op->dtype);
    if (overlap && !isAllowedAlias(*op, rank, block))
      return invalidArgument(std::string(fn) +
                             ": sendbuff and recvbuff overlap but are not the in-place layout "
                             "(see loom.h for where recvbuff must start)");
  }
  return Status::ok();
}

}  // namespace loom::api
