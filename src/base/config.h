// Config: THE one table of LOOM_* environment variables (DESIGN.md section 3).
//
// Every variable is declared once in LOOM_CONFIG_VARS below with its type, default and help
// text. The process environment is read only through Environment (config.cpp is the one place
// that calls getenv), parsed into an immutable Config, and that Config is passed explicitly to
// whatever needs it. A communicator's loomConfig_t can override fields after parsing.
// loom-info prints this table with defaults and current values.
//
// Thread-safety: Config is a plain value. Environment::process() snapshots the environment on
// first use; later setenv() calls by the program are not seen (by design: a value that changes
// under a running communicator is how NVIDIA/nccl#1741 broke Megatron).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace loom {

// X(field, NAME, Type, default, help). Types: String, Int, Bool.
#define LOOM_CONFIG_VARS(X)                                                                   \
  X(debug, "LOOM_DEBUG", String, "WARN", "Log level: NONE, VERSION, WARN, INFO or TRACE")     \
  X(debugSubsys, "LOOM_DEBUG_SUBSYS", String, "ALL",                                          \
    "Comma-separated subsystems to log (INIT,BOOTSTRAP,NET,SHM,COLL,TUNING,TOPO,API,ALL); "   \
    "a leading ^ excludes the listed ones")                                                   \
  X(debugFile, "LOOM_DEBUG_FILE", String, "",                                                 \
    "Write the log to this file instead of stderr; %h expands to the host, %p to the pid")    \
  X(timeoutMs, "LOOM_TIMEOUT_MS", Int, "600000",                                              \
    "Deadline in milliseconds for every blocking wait (init, collectives, destroy)")          \
  X(transport, "LOOM_TRANSPORT", String, "auto",                                              \
    "Force one transport for all peers: auto, loopback, shm, socket or ibverbs")              \
  X(shmDisable, "LOOM_SHM_DISABLE", Bool, "0", "Never use shared memory between processes")   \
  X(shmCma, "LOOM_SHM_CMA", Bool, "0",                                                        \
    "Copy large shm messages between processes once with process_vm_readv (CMA) instead of "  \
    "through the shared FIFO (slower than the FIFO on the machines measured so far)")         \
  X(ibDisable, "LOOM_IB_DISABLE", Bool, "0", "Never use the ibverbs (RDMA) transport")        \
  X(ibHca, "LOOM_IB_HCA", String, "",                                                         \
    "RDMA devices and ports to use, NCCL syntax: mlx5_0:1,mlx5_1; ^ excludes; = exact names") \
  X(ibGidIndex, "LOOM_IB_GID_INDEX", Int, "-1",                                               \
    "RoCE GID index (-1: prefer RoCE v2 with an IPv4 address)")                               \
  X(ibTc, "LOOM_IB_TC", Int, "0", "Traffic class of RDMA packets (RoCE: DSCP << 2)")          \
  X(ibSl, "LOOM_IB_SL", Int, "0", "InfiniBand service level of RDMA queue pairs")             \
  X(ibTimeout, "LOOM_IB_TIMEOUT", Int, "20",                                                  \
    "RDMA ack timeout exponent: 4.096 us * 2^value before a retransmission")                  \
  X(ibRetryCnt, "LOOM_IB_RETRY_CNT", Int, "7", "RDMA retransmissions before a peer is dead")  \
  X(ibQpsPerConnection, "LOOM_IB_QPS_PER_CONNECTION", Int, "1",                               \
    "RDMA queue pairs per connection; large messages are spread over them")                   \
  X(socketIfname, "LOOM_SOCKET_IFNAME", String, "",                                           \
    "Network interface (or prefix; ^ to exclude) for bootstrap and socket traffic")           \
  X(commId, "LOOM_COMM_ID", String, "",                                                       \
    "host:port of the rendezvous root for launcher-started jobs (set by loomrun)")            \
  X(secret, "LOOM_SECRET", String, "",                                                        \
    "32 hex digits shared by every rank of a launcher-started job; proves membership")        \
  X(hostId, "LOOM_HOSTID", String, "",                                                        \
    "Override this process's host identity (ranks with equal ids may use shared memory)")     \
  X(topoFile, "LOOM_TOPO_FILE", String, "",                                                   \
    "Load the host topology from this XML file instead of discovering it")                    \
  X(topoDumpFile, "LOOM_TOPO_DUMP_FILE", String, "",                                          \
    "Write the discovered topology as XML at init; %h expands to the host, %p to the pid")    \
  X(algo, "LOOM_ALGO", String, "", "Force algorithms, e.g. 'allreduce:ring;broadcast:chain'") \
  X(tuningFile, "LOOM_TUNING_FILE", String, "",                                               \
    "Cost-model profile for the planner (written by loom-perf --calibrate)")                  \
  X(sliceBytes, "LOOM_SLICE_BYTES", Int, "131072",                                            \
    "Pipelining unit: large transfers are cut into slices of this many bytes")                \
  X(pipelineDepth, "LOOM_PIPELINE_DEPTH", Int, "8",                                           \
    "Slices in flight per connection and direction")                                          \
  X(nchannels, "LOOM_NCHANNELS", Int, "0", "Parallel channels per collective (0 = planner)")  \
  X(directBytes, "LOOM_DIRECT_BYTES", Int, "262144",                                          \
    "Bytes per buffer of the host window through which one_shot and two_shot AllReduce run "  \
    "when every rank is a process on one host (larger calls go in pieces); 0 turns it off")   \
  X(cudaWait, "LOOM_CUDA_WAIT", String, "",                                                   \
    "How a stream waits for a device call's host part: '' = cuStreamWaitValue32 when the "    \
    "driver offers it, else a polling kernel; 'kernel' forces the kernel")                    \
  X(cudaStageBytes, "LOOM_CUDA_STAGE_BYTES", Int, "1073741824",                               \
    "Pinned host memory one rank's staged device calls may hold before a new call waits for " \
    "earlier ones to finish (calls in a group never wait; one call may exceed it alone)")     \
  X(cudaDirect, "LOOM_CUDA_DIRECT", Bool, "0",                                                \
    "Device calls between ranks that are threads of one process on one GPU read each "        \
    "other's device buffers directly (docs/GPU.md; not yet run on a GPU, so off by default)") \
  X(cudaIpc, "LOOM_CUDA_IPC", Bool, "0",                                                      \
    "Device calls between ranks of one host go through CUDA IPC windows the peers read, "     \
    "not through host memory (docs/GPU.md; not yet run on a GPU, so off by default)")         \
  X(cudaIpcBytes, "LOOM_CUDA_IPC_BYTES", Int, "33554432",                                     \
    "Device memory of each rank's CUDA IPC window; larger calls run in chunks of it")         \
  X(spinUs, "LOOM_SPIN_US", Int, "20",                                                        \
    "Microseconds a waiting rank polls before it sleeps until a peer wakes it")               \
  X(check, "LOOM_CHECK", Bool, "0",                                                           \
    "Before each collective, ranks compare (collective, count, dtype, op, root, sequence) "   \
    "through the rendezvous store and fail on a mismatch, naming the first divergent rank")   \
  X(launchRank, "LOOM_RANK", Int, "-1", "This process's rank (set by loomrun)")               \
  X(launchWorldSize, "LOOM_WORLD_SIZE", Int, "-1", "Number of ranks (set by loomrun)")        \
  X(launchLocalRank, "LOOM_LOCAL_RANK", Int, "-1", "Rank on this host (set by loomrun)")      \
  X(launchLocalSize, "LOOM_LOCAL_SIZE", Int, "-1", "Ranks on this host (set by loomrun)")     \
  X(uniqueId, "LOOM_UNIQUE_ID", String, "", "Hex unique id of the job (set by loomrun)")

// The environment, injectable so tests can supply their own.
class Environment {
 public:
  virtual ~Environment() = default;
  virtual std::optional<std::string> get(std::string_view name) const = 0;
  // Every variable, for diagnostics (unknown LOOM_* names) and loom-info.
  virtual std::map<std::string, std::string> all() const = 0;

  // The process environment, snapshotted at first use.
  static const Environment& process();
};

class MapEnvironment final : public Environment {
 public:
  explicit MapEnvironment(std::map<std::string, std::string> vars) : vars_(std::move(vars)) {}
  std::optional<std::string> get(std::string_view name) const override;
  std::map<std::string, std::string> all() const override { return vars_; }

 private:
  std::map<std::string, std::string> vars_;
};

namespace detail {
constexpr int64_t parseIntLiteral(const char* s) {
  int64_t v = 0;
  bool neg = false;
  if (*s == '-') {
    neg = true;
    ++s;
  }
  for (; *s; ++s)
    v = v * 10 + (*s - '0');
  return neg ? -v : v;
}
}  // namespace detail

struct Config {
#define LOOM_CONFIG_FIELD_String(field, def) std::string field = def;
#define LOOM_CONFIG_FIELD_Int(field, def) int64_t field = LOOM_CONFIG_INT_LITERAL(def);
#define LOOM_CONFIG_FIELD_Bool(field, def) bool field = (def[0] == '1');
#define LOOM_CONFIG_INT_LITERAL(def) ::loom::detail::parseIntLiteral(def)
#define LOOM_CONFIG_FIELD(field, name, type, def, help) LOOM_CONFIG_FIELD_##type(field, def)
  LOOM_CONFIG_VARS(LOOM_CONFIG_FIELD)
#undef LOOM_CONFIG_FIELD

  // Parses every LOOM_* variable. Bad values are InvalidArgument naming the variable.
  // Unknown LOOM_* names are warned about (once per process) with the nearest known name.
  static Result<Config> fromEnvironment(const Environment& env);
  // The process environment's Config, parsed once; aborts with the message if it is invalid
  // only when used for logging setup (callers that can fail use fromEnvironment).
  static const Config& processDefaults();

  // Current value of a variable by its LOOM_* name, as text (for loom-info); nullopt if unknown.
  std::optional<std::string> valueOf(std::string_view name) const;
  // Sets a variable by name from text, with the same parsing as the environment.
  Status set(std::string_view name, std::string_view value);
};

enum class ConfigType { kString, kInt, kBool };

struct ConfigVar {
  const char* name;
  ConfigType type;
  const char* defaultValue;
  const char* help;
};

// The table, in declaration order.
std::span<const ConfigVar> configTable();

// Launcher-detection helpers read foreign variables (OMPI_*, PMI_*, SLURM_*, RANK …) through
// the same Environment; parseInt is shared with the table.
Result<int64_t> parseInt(std::string_view name, std::string_view text);
Result<bool> parseBool(std::string_view name, std::string_view text);

}  // namespace loom
