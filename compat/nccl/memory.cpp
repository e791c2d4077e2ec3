// Memory: ncclMemAlloc/Free, buffer and window registration, PreMulSum operators (nccl.h).
//
// loom moves host memory through its transports and needs no registration, so a registration
// handle records the region (and is checked on deregistration). Device memory and symmetric
// windows need loom's GPU path and return ncclInvalidUsage until it exists.
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>

#include "comm.h"

using loom::nccl::fail;
using loom::nccl::fromLoom;

namespace {

constexpr size_t kAlignBytes = 4096;  // as NCCL_WIN_REQUIRED_ALIGNMENT

std::mutex gAllocMu;
std::set<void*>& allocations() {
  static auto* live = new std::set<void*>();  // never freed: used until exit
  return *live;
}
std::set<void*>& deviceAllocations() {  // from cuMemAlloc (a CUDA process)
  static auto* live = new std::set<void*>();
  return *live;
}

struct Registration {
  void* buff;
  size_t size;
};

size_t scalarBytes(ncclDataType_t t) {
  switch (t) {
    case ncclInt8:
    case ncclUint8:
    case ncclFloat8e4m3:
    case ncclFloat8e5m2:
      return 1;
    case ncclFloat16:
    case ncclBfloat16:
      return 2;
    case ncclInt32:
    case ncclUint32:
    case ncclFloat32:
      return 4;
    default:
      return 8;
  }
}

}  // namespace

extern "C" {

ncclResult_t ncclMemAlloc(void** ptr, size_t size) {
  if (!ptr) return fail(ncclInvalidArgument, "ncclMemAlloc: ptr is NULL");
  *ptr = nullptr;
  if (loom::nccl::currentCudaDevice() >= 0) {
    // A CUDA process: device memory of the current device, from the driver it already loaded
    // (cuMemAlloc_v2; loom's GPU path takes it like any cudaMalloc'd buffer).
    using MemAllocFn = int (*)(unsigned long long*, size_t);
    auto memAlloc = reinterpret_cast<MemAllocFn>(loom::nccl::cudaDriverSymbol("cuMemAlloc_v2"));
    unsigned long long d = 0;
    const int rc = memAlloc ? memAlloc(&d, size == 0 ? kAlignBytes : size) : -1;
    if (rc != 0)
      return fail(ncclUnhandledCudaError, "ncclMemAlloc: cuMemAlloc of " + std::to_string(size) +
                                              " bytes failed (CUresult " + std::to_string(rc) +
                                              ")");
    std::lock_guard<std::mutex> lock(gAllocMu);
    deviceAllocations().insert(reinterpret_cast<void*>(d));
    *ptr = reinterpret_cast<void*>(d);
    return ncclSuccess;
  }
  // Without CUDA in the process the caller can only use host memory: give page-aligned memory.
  void* p = nullptr;
  const size_t bytes =
      size == 0 ? kAlignBytes : (size + kAlignBytes - 1) / kAlignBytes * kAlignBytes;
  if (posix_memalign(&p, kAlignBytes, bytes) != 0)
    return fail(ncclSystemError, "ncclMemAlloc: posix_memalign of " + std::to_string(bytes) +
                                     " bytes failed: " + std::strerror(errno));
  std::lock_guard<std::mutex> lock(gAllocMu);
  allocations().insert(p);
  *ptr = p;
  return ncclSuccess;
}

ncclResult_t ncclMemFree(void* ptr) {
  if (!ptr) return ncclSuccess;
  {
    std::lock_guard<std::mutex> lock(gAllocMu);
    if (deviceAllocations().erase(ptr) == 1) {
      using MemFreeFn = int (*)(unsigned long long);
      auto memFree = reinterpret_cast<MemFreeFn>(loom::nccl::cudaDriverSymbol("cuMemFree_v2"));
      const int rc = memFree ? memFree(reinterpret_cast<unsigned long long>(ptr)) : -1;
      if (rc != 0)
        return fail(ncclUnhandledCudaError,
                    "ncclMemFree: cuMemFree failed (CUresult " + std::to_string(rc) + ")");
      return ncclSuccess;
    }
    if (allocations().erase(ptr) == 0)
      return fail(ncclInvalidArgument, "ncclMemFree: pointer was not allocated by ncclMemAlloc");
  }
  std::free(ptr);
  return ncclSuccess;
}

ncclResult_t ncclCommRegister(const ncclComm_t comm, void* buff, size_t size, void** handle) {
  ncclResult_t r = loom::nccl::checkComm(comm, "ncclCommRegister", true);
  if (r != ncclSuccess) return r;
  if (!buff || !handle || size == 0)
    return fail(ncclInvalidArgument, "ncclCommRegister: buff or handle is NULL, or size is 0");
  *handle = nullptr;
  // Host or device memory: a registration is a hint, and loom needs none (docs/NCCL.md).
  auto* reg = static_cast<Registration*>(operator new(sizeof(Registration)));
  *reg = Registration{buff, size};
  std::lock_guard<std::mutex> lock(comm->mu);
  comm->registrations.insert(reg);
  *handle = reg;
  return ncclSuccess;
}

ncclResult_t ncclCommDeregister(const ncclComm_t comm, void* handle) {
  ncclResult_t r = loom::nccl::checkComm(comm, "ncclCommDeregister", true);
  if (r != ncclSuccess) return r;
  std::lock_guard<std::mutex> lock(comm->mu);
  if (!handle || comm->registrations.erase(handle) == 0)
    return fail(ncclInvalidArgument,
                "ncclCommDeregister: handle was not returned by ncclCommRegister on this "
                "communicator (or was deregistered already)");
  operator delete(handle);
  return ncclSuccess;
}

ncclResult_t ncclCommWindowRegister(ncclComm_t comm, void* buff, size_t size, ncclWindow_t* win,
                                    int winFlags) {
  ncclResult_t r = loom::nccl::checkComm(comm, "ncclCommWindowRegister", true);
  if (r != ncclSuccess) return r;
  if (win) *win = nullptr;
  (void)buff;
  (void)size;
  (void)winFlags;
  return fail(ncclInvalidUsage,
              "ncclCommWindowRegister: symmetric memory windows are not supported (they need "
              "loom's GPU path and device-side API; see docs/NCCL.md)");
}

ncclResult_t ncclCommWindowDeregister(ncclComm_t comm, ncclWindow_t win) {
  ncclResult_t r = loom::nccl::checkComm(comm, "ncclCommWindowDeregister", true);
  if (r != ncclSuccess) return r;
  (void)win;
  return fail(ncclInvalidUsage,
              "ncclCommWindowDeregister: symmetric memory windows are not supported (no window "
              "can have been registered)");
}

ncclResult_t ncclRedOpCreatePreMulSum(ncclRedOp_t* op, void* scalar, ncclDataType_t datatype,
                                      ncclScalarResidence_t residence, ncclComm_t comm) {
  ncclResult_t r = loom::nccl::checkComm(comm, "ncclRedOpCreatePreMulSum", true);
  if (r != ncclSuccess) return r;
  if (!op || !scalar)
    return fail(ncclInvalidArgument, "ncclRedOpCreatePreMulSum: op or scalar is NULL");
  const int type = loom::nccl::rawValue(datatype), where = loom::nccl::rawValue(residence);
  if (type < 0 || type >= ncclNumTypes)
    return fail(ncclInvalidArgument, "ncclRedOpCreatePreMulSum: datatype " + std::to_string(type) +
                                         " is not an ncclDataType_t");
  // A host-immediate scalar, or one in device memory: loom's own op (loom reads a device
  // scalar on each call's stream, as NCCL's kernels do).
  const bool deviceScalar = where == ncclScalarDevice && loom::nccl::isDeviceMemory(scalar);
  if (where == ncclScalarHostImmediate || deviceScalar) {
    loomRedOp_t lop;
    loomResult_t lr = loomRedOpCreatePreMulSum(
        &lop, scalar, static_cast<loomDataType_t>(datatype),
        deviceScalar ? loomScalarDevice : loomScalarHostImmediate, comm->loom);
    if (lr != loomSuccess) return fromLoom(lr, "ncclRedOpCreatePreMulSum");
    std::lock_guard<std::mutex> lock(comm->mu);
    comm->ops[lop] = loom::nccl::PreMulOp{datatype, nullptr};
    *op = static_cast<ncclRedOp_t>(lop);
    return ncclSuccess;
  }
  if (where != ncclScalarDevice)
    return fail(ncclInvalidArgument, "ncclRedOpCreatePreMulSum: residence " +
                                         std::to_string(where) +
                                         " is not an ncclScalarResidence_t");
  // ncclScalarDevice in host-readable memory: read at every call, as NCCL's device scalar is.
  std::lock_guard<std::mutex> lock(comm->mu);
  const int value = loom::nccl::kDeviceOpBase + comm->nextDeviceOp++;
  comm->ops[value] = loom::nccl::PreMulOp{datatype, scalar};
  *op = static_cast<ncclRedOp_t>(value);
  return ncclSuccess;
}

ncclResult_t ncclRedOpDestroy(ncclRedOp_t op, ncclComm_t comm) {
  ncclResult_t r = loom::nccl::checkComm(comm, "ncclRedOpDestroy", true);
  if (r != ncclSuccess) return r;
  std::lock_guard<std::mutex> lock(comm->mu);
  auto it = comm->ops.find(op);
  if (it == comm->ops.end())
    return fail(ncclInvalidArgument, "ncclRedOpDestroy: op " + std::to_string(op) +
                                         " is not a PreMulSum op created on this communicator");
  const bool device = it->second.scalar != nullptr;
  comm->ops.erase(it);
  if (device) return ncclSuccess;
  return fromLoom(loomRedOpDestroy(static_cast<loomRedOp_t>(op), comm->loom), "ncclRedOpDestroy");
}

}  // extern "C"

namespace loom::nccl {

// Used by collectives.cpp: a loom op for `op` of this call (a temporary one, created now from
// the current scalar, for an ncclScalarDevice op). *temporary tells the caller to destroy it.
ncclResult_t resolveOp(ncclComm* comm, int op, int datatype, loomRedOp_t* out, bool* temporary) {
  *temporary = false;
  *out = static_cast<loomRedOp_t>(op);
  if (op < ncclNumOps) return ncclSuccess;
  PreMulOp pm;
  {
    std::lock_guard<std::mutex> lock(comm->mu);
    auto it = comm->ops.find(op);
    if (it == comm->ops.end())
      return fail(ncclInvalidArgument, "op " + std::to_string(op) +
                                           " is neither an ncclRedOp_t nor a PreMulSum op "
                                           "created on this communicator");
    pm = it->second;
  }
  if (pm.datatype != datatype)
    return fail(ncclInvalidArgument,
                "PreMulSum op " + std::to_string(op) + " was created for datatype " +
                    std::to_string(pm.datatype) + " but the call uses " + std::to_string(datatype));
  if (!pm.scalar) return ncclSuccess;
  unsigned char value[8];
  std::memcpy(value, pm.scalar, scalarBytes(pm.datatype));
  loomResult_t lr = loomRedOpCreatePreMulSum(out, value, static_cast<loomDataType_t>(datatype),
                                             loomScalarHostImmediate, comm->loom);
  if (lr != loomSuccess) return fromLoom(lr, "PreMulSum (device scalar)");
  *temporary = true;
  return ncclSuccess;
}

}  // namespace loom::nccl

NCCL_LOOM_ALIAS(ncclMemAlloc);
NCCL_LOOM_ALIAS(ncclMemFree);
NCCL_LOOM_ALIAS(ncclCommRegister);
NCCL_LOOM_ALIAS(ncclCommDeregister);
NCCL_LOOM_ALIAS(ncclCommWindowRegister);
NCCL_LOOM_ALIAS(ncclCommWindowDeregister);
NCCL_LOOM_ALIAS(ncclRedOpCreatePreMulSum);
NCCL_LOOM_ALIAS(ncclRedOpDestroy);
