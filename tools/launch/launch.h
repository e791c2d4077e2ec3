// Local job launcher shared by loomrun and `loom-perf -np N`: starts the ranks of this host
// with the rendezvous set up through the environment (src/bootstrap/launcher.h, the "loom"
// launcher), supervises them, and tears the job down so that nothing is left running.
//
// Single host (nnodes == 1): runJob calls loomGetUniqueId, so the rendezvous root lives in this
// process, which outlives every rank; each rank gets LOOM_UNIQUE_ID (hex of the 128 bytes of
// loomUniqueId), LOOM_RANK, LOOM_WORLD_SIZE, LOOM_LOCAL_RANK and LOOM_LOCAL_SIZE. Unless the
// caller's environment sets LOOM_SOCKET_IFNAME, it is set to "lo" first, so the root listens on
// the loopback interface only (and the ranks' socket traffic stays on it too).
//
// Several hosts (nnodes > 1, one runJob per host): ranks get LOOM_COMM_ID=master, LOOM_RANK =
// nodeRank * localRanks + localRank, LOOM_WORLD_SIZE = nnodes * localRanks and the local rank and
// size; global rank 0 starts the root itself (loomCommInitEnv). The job's secret is LOOM_SECRET
// from the environment; without it the ranks derive a weak one, and runJob warns.
//
// Supervision:
//   - every rank is the leader of its own process group (so a signal to the group reaches
//     whatever the rank started), gets SIGKILL if this process dies (PR_SET_PDEATHSIG), and
//     reads stdin from /dev/null;
//   - the first rank that fails (non-zero exit code or killed by a signal) is reported by rank,
//     pid and cause; the others get `graceMs` to exit on their own (a loom rank whose peer died
//     fails with RemoteError), then SIGTERM, then SIGKILL after `killAfterMs`;
//   - SIGINT, SIGTERM and SIGHUP received by this process are forwarded to every rank, with the
//     same grace period and escalation; a second SIGINT kills at once;
//   - when the last rank has exited, every rank's process group is sent SIGKILL, so no
//     grandchild outlives the job.
//
// Thread-safety: runJob must be called from the main thread BEFORE any other thread exists
// (before the first loom call): it blocks SIGCHLD, SIGINT, SIGTERM and SIGHUP so that they are
// read from a signalfd, and threads created later (the rendezvous root) inherit that mask.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace loom::launch {

struct JobSpec {
  std::vector<std::string> command;  // program (searched in PATH unless it has a '/') and args
  int localRanks = 1;                // ranks started on this host
  int nnodes = 1;                    // hosts in the job
  int nodeRank = 0;                  // index of this host in [0, nnodes)
  std::string master;                // host:port of the root; required when nnodes > 1
  bool tagOutput = false;            // prefix every output line with "[rankN]: "
  int64_t graceMs = 5000;            // after the first failure, before SIGTERM to the others
  int64_t killAfterMs = 2000;        // after SIGTERM, before SIGKILL
  int64_t timeoutMs = 0;             // whole job; 0 = no limit. Expiry: exit status 124
  std::map<std::string, std::string> extraEnv;  // set for every rank (after the inherited ones)
  std::string name = "loomrun";                 // prefix of this launcher's own messages (stderr)
};

// Checks the spec; returns "" when it is usable, else the reason (for a usage message).
std::string validate(const JobSpec& spec);

// Runs the job to completion (see the header comment) and returns the status the launcher
// should exit with: 0 when every rank exited 0; else 128 + the signal when this process was
// interrupted; else the first failing rank's exit code (128 + signal when it was killed by a
// signal); else 124 when the job timed out. Errors before any rank starts (rendezvous, fork,
// exec) are reported on stderr and give 1 (127 when the program cannot be executed).
int runJob(const JobSpec& spec);

}  // namespace loom::launch
