// Host entry points of NCCL's device API (nccl_device.h): device communicators and the resource
// requirements of device-side barriers and all-to-all. They need loom's GPU path (device
// kernels that use symmetric memory), so each one returns ncclInvalidUsage with a message.
// Programs built against NVIDIA's headers still load and get a clear error instead of an
// undefined symbol. The team helpers of that header (ncclTeamWorld, ncclTeamLsa, ncclTeamRail,
// ncclTeamRankTo*) and ncclLLA2ACalcSlots return plain values, cannot report an error and are
// only meaningful with a device communicator, so they are not exported (docs/NCCL.md).
//
// The argument types live in NVIDIA's nccl_device headers, not in nccl.h; pointers are opaque
// here, and TeamAbi has ncclTeam_t's layout (passed by value).
#include "comm.h"

using loom::nccl::fail;

namespace {

struct TeamAbi {
  int nRanks, rank, stride;
};

ncclResult_t unsupported(ncclComm_t comm, const char* fn) {
  if (comm) {
    ncclResult_t r = loom::nccl::checkComm(comm, fn, true);
    if (r != ncclSuccess) return r;
  }
  return fail(ncclInvalidUsage, std::string(fn) +
                                    ": NCCL's device API (nccl_device.h) needs loom's GPU path, "
                                    "which is not built yet (see docs/NCCL.md)");
}

}  // namespace

#define NCCL_LOOM_EXPORT extern "C" __attribute__((visibility("default")))

NCCL_LOOM_EXPORT ncclResult_t ncclDevCommCreate(ncclComm_t comm, const void* requirements,
                                                void* outDevComm) {
  (void)requirements;
  (void)outDevComm;
  return unsupported(comm, "ncclDevCommCreate");
}

NCCL_LOOM_EXPORT ncclResult_t ncclDevCommDestroy(ncclComm_t comm, const void* devComm) {
  (void)devComm;
  return unsupported(comm, "ncclDevCommDestroy");
}

NCCL_LOOM_EXPORT ncclResult_t ncclLsaBarrierCreateRequirement(TeamAbi team, int nBarriers,
                                                              void* outHandle, void* outReq) {
  (void)team;
  (void)nBarriers;
  (void)outHandle;
  (void)outReq;
  return unsupported(nullptr, "ncclLsaBarrierCreateRequirement");
}

NCCL_LOOM_EXPORT ncclResult_t ncclGinBarrierCreateRequirement(ncclComm_t comm, TeamAbi team,
                                                              int nBarriers, void* outHandle,
                                                              void* outReq) {
  (void)team;
  (void)nBarriers;
  (void)outHandle;
  (void)outReq;
  return unsupported(comm, "ncclGinBarrierCreateRequirement");
}

NCCL_LOOM_EXPORT ncclResult_t ncclLLA2ACreateRequirement(int nBlocks, int nSlots, void* outHandle,
                                                         void* outReq) {
  (void)nBlocks;
  (void)nSlots;
  (void)outHandle;
  (void)outReq;
  return unsupported(nullptr, "ncclLLA2ACreateRequirement");
}

NCCL_LOOM_ALIAS(ncclDevCommCreate);
NCCL_LOOM_ALIAS(ncclDevCommDestroy);
NCCL_LOOM_ALIAS(ncclLsaBarrierCreateRequirement);
NCCL_LOOM_ALIAS(ncclGinBarrierCreateRequirement);
NCCL_LOOM_ALIAS(ncclLLA2ACreateRequirement);
