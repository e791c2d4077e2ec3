// Launcher detection: who started this process, which rank it is, and where the job's
// rendezvous root is, from the environment that loomrun, mpirun (Open MPI), mpiexec (MPICH /
// Hydra), srun (Slurm) or torchrun set.
//
// Which launcher (the first that matches wins; the innermost launcher comes first):
//   loom      LOOM_RANK, LOOM_WORLD_SIZE, LOOM_LOCAL_RANK, LOOM_LOCAL_SIZE (the Config table)
//   torchrun  TORCHELASTIC_RUN_ID with RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE
//             (ahead of Slurm: torchrun is often started by srun, once per node)
//   openmpi   OMPI_COMM_WORLD_RANK/SIZE/LOCAL_RANK/LOCAL_SIZE; job id OMPI_MCA_ess_base_jobid
//             or PMIX_NAMESPACE
//   mpich     PMI_RANK, PMI_SIZE, MPI_LOCALRANKID, MPI_LOCALNRANKS. Hydra exports no job id, so
//             the job id is PMI_JOBID when set, else the pid of the hydra_pmi_proxy this process
//             descends from, which only ranks on one host share.
//   slurm     SLURM_PROCID with SLURM_STEP_ID (a task of an srun step, not the batch script),
//             SLURM_NTASKS, SLURM_LOCALID, SLURM_NTASKS_PER_NODE or SLURM_[STEP_]TASKS_PER_NODE;
//             job id SLURM_JOB_ID.SLURM_STEP_ID
//   torchrun  RANK and WORLD_SIZE without TORCHELASTIC_RUN_ID (torch.distributed.launch, or set
//             by hand)
//
// The root, in priority order:
//   1. LOOM_UNIQUE_ID (hex; loomrun sets it and runs the root itself);
//   2. LOOM_COMM_ID (host:port);
//   3. MASTER_ADDR with port MASTER_PORT + 1. Not MASTER_PORT itself: under torchrun the
//      elastic agent's store (or torch.distributed's) already listens there;
//   4. when every rank is on this host (local size == world size, or SLURM_NNODES == 1):
//      127.0.0.1 with a port in [12000, 32000) derived from the launcher's job id. Two jobs on
//      one host collide with probability about 1/20000 per pair; rank 0 then fails to bind, or
//      the other job's root rejects us (different secret), and the error says to set
//      LOOM_COMM_ID;
//   5. otherwise InvalidUsage: set LOOM_COMM_ID.
// Rank 0 starts the root (connectLaunchStore) unless LOOM_UNIQUE_ID names one.
//
// The secret: LOOM_UNIQUE_ID's; else LOOM_SECRET (32 hex digits); else derived by hashing the
// launcher, its job id, the world size and the root (secretIsDerived). A derived secret keeps a
// stale job or a neighbour's ranks out by accident; it is no defence against an attacker who
// can read the job id (anyone on the host can). Set LOOM_SECRET to a random value for that.
//
// Bad values (a rank that is not a number, rank >= size, size <= 0) are InvalidArgument naming
// the variable; no launcher at all is InvalidUsage.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/config.h"
#include "base/socket.h"
#include "base/status.h"
#include "base/time.h"
#include "bootstrap/tcp_store.h"
#include "bootstrap/unique_id.h"

namespace loom::bootstrap {

struct LaunchInfo {
  std::string launcher;  // "loom", "openmpi", "mpich", "slurm" or "torchrun"
  int rank = -1;
  int worldSize = 0;
  int localRank = -1;                 // -1: the launcher does not say
  int localSize = -1;                 // -1: the launcher does not say
  std::optional<UniqueId> uniqueId;   // LOOM_UNIQUE_ID, when set
  std::optional<SocketAddress> root;  // always set by a successful detectLaunch
  std::array<uint8_t, 16> secret{};
  bool secretIsDerived = false;
  std::string jobId;  // the launcher's job id; "" when it has none

  // This process must start the root: rank 0, when no LOOM_UNIQUE_ID names a running one.
  bool startsRoot() const { return rank == 0 && !uniqueId.has_value(); }
  // The id every rank connects with: LOOM_UNIQUE_ID's, or {root, secret}.
  UniqueId rendezvousId() const;
};

// What detection needs to know about this process beyond its environment (injectable so tests
// can fake it).
class ProcessInfo {
 public:
  virtual ~ProcessInfo() = default;
  // The pid of the nearest ancestor whose command name (/proc/<pid>/comm) is `name`.
  virtual std::optional<int64_t> ancestorPid(std::string_view name) const = 0;
  // The real process (reads /proc).
  static const ProcessInfo& current();
};

// Pure function of its arguments (plus ProcessInfo::current() for the first overload).
Result<LaunchInfo> detectLaunch(const Environment& env, const Config& config);
Result<LaunchInfo> detectLaunch(const Environment& env, const Config& config,
                                const ProcessInfo& process);

// The store of a launcher-started job: on the rank that startsRoot(), first starts a detached
// root (tcp_store.h) listening on the root's port (on every interface, or on loopback for a
// loopback root); then connects like every other rank. Blocks up to the deadline for the root.
// While a returned client is alive, later calls for the same job and rank return it (so a
// second communicator does not try to start a second root on the same port): share it, with a
// distinct Bootstrap prefix per communicator. Thread-safe.
Result<std::shared_ptr<TcpStoreClient>> connectLaunchStore(
    const LaunchInfo& info, Deadline deadline, const std::atomic<bool>* cancel = nullptr);

// The port of rule 4 above.
uint16_t derivedRootPort(const std::string& launcher, const std::string& jobId);

}  // namespace loom::bootstrap
