// The ways a communicator comes to life (DESIGN.md section 1, Init flow).
//
// All of them end in Communicator::create over a Store: a TCP store served by the rendezvous
// root for ranks in processes, or an in-memory store for ranks as threads in one process.
#pragma once

#include <memory>
#include <vector>

#include "base/config.h"
#include "base/status.h"
#include "bootstrap/unique_id.h"
#include "runtime/communicator.h"

namespace loom::runtime {

// Creates a unique id and starts its rendezvous root in this process (detached: it lives until
// every rank that joined has left). LOOM_COMM_ID fixes the root's address; otherwise the first
// interface that matches LOOM_SOCKET_IFNAME with a free port.
Result<bootstrap::UniqueId> createUniqueId(const Config& config);

// One rank of a job that shares `id`.
Result<std::unique_ptr<Communicator>> initRank(const bootstrap::UniqueId& id, int rank, int nranks,
                                               const Config& config, const std::string& name);

// nranks communicators in this process, over an in-memory store (created concurrently, since
// init is collective).
Result<std::vector<std::unique_ptr<Communicator>>> initAll(int nranks, const Config& config,
                                                           const std::string& name);

// A rank started by loomrun, mpirun, srun or torchrun (bootstrap/launcher.h).
Result<std::unique_ptr<Communicator>> initFromEnvironment(const Environment& env,
                                                          const Config& config,
                                                          const std::string& name);

}  // namespace loom::runtime
