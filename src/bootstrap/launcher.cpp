#include "bootstrap/launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "base/host.h"
#include "base/log.h"
#include "base/random.h"
#include "base/sha256.h"

namespace loom::bootstrap {

namespace {

constexpr uint16_t kDerivedPortBase = 12000;
constexpr uint16_t kDerivedPortSpan = 20000;

// What one launcher says about this process.
struct Detected {
  std::string launcher;
  int rank = -1;
  int worldSize = 0;
  int localRank = -1;
  int localSize = -1;
  std::string jobId;
  bool singleHost = false;  // the launcher says so beyond local size == world size
};

// Reads foreign variables; every error names the variable.
class Vars {
 public:
  explicit Vars(const Environment& env) : env_(env) {}
  bool has(std::string_view name) const { return env_.get(name).has_value(); }
  std::string str(std::string_view name) const { return env_.get(name).value_or(""); }
  Result<std::optional<int64_t>> optInt(std::string_view name) const {
    std::optional<std::string> v = env_.get(name);
    if (!v) return std::optional<int64_t>();
    LOOM_ASSIGN_OR_RETURN(int64_t x, parseInt(name, *v));
    return std::optional<int64_t>(x);
  }
  Result<int64_t> reqInt(std::string_view name, std::string_view launcher) const {
    LOOM_ASSIGN_OR_RETURN(std::optional<int64_t> v, optInt(name));
    if (!v)
      return invalidArgument(std::string(launcher) + " launch detected, but " + std::string(name) +
                             " is not set");
    return *v;
  }

 private:
  const Environment& env_;
};

Status checkRankInSize(std::string_view rankName, int64_t rank, std::string_view sizeName,
                       int64_t size) {
  if (size <= 0 || size > INT_MAX)
    return invalidArgument(std::string(sizeName) + "=" + std::to_string(size) +
                           " is not a valid number of ranks");
  if (rank < 0 || rank >= size)
    return invalidArgument(std::string(rankName) + "=" + std::to_string(rank) + " is not in [0, " +
                           std::string(sizeName) + "=" + std::to_string(size) + ")");
  return Status::ok();
}

// Reads and validates rank/size and, where present, local rank/size.
Result<Detected> readRanks(const Vars& v, const char* launcher, const char* rankName,
                           const char* sizeName, const char* localRankName,
                           const char* localSizeName) {
  Detected d;
  d.launcher = launcher;
  LOOM_ASSIGN_OR_RETURN(int64_t rank, v.reqInt(rankName, launcher));
  LOOM_ASSIGN_OR_RETURN(int64_t size, v.reqInt(sizeName, launcher));
  LOOM_RETURN_IF_ERROR(checkRankInSize(rankName, rank, sizeName, size));
  d.rank = static_cast<int>(rank);
  d.worldSize = static_cast<int>(size);
  LOOM_ASSIGN_OR_RETURN(std::optional<int64_t> localRank, v.optInt(localRankName));
  std::optional<int64_t> localSize;
  if (localSizeName) {
    LOOM_ASSIGN_OR_RETURN(localSize, v.optInt(localSizeName));
  }
  if (localSize) {
    if (*localSize <= 0 || *localSize > size)
      return invalidArgument(std::string(localSizeName) + "=" + std::to_string(*localSize) +
                             " is not in [1, " + sizeName + "=" + std::to_string(size) + "]");
    d.localSize = static_cast<int>(*localSize);
  }
  if (localRank) {
    if (*localRank < 0 || (localSize && *localRank >= *localSize))
      return invalidArgument(std::string(localRankName) + "=" + std::to_string(*localRank) +
                             " is not a valid local rank" +
                             (localSize ? " (local size " + std::to_string(*localSize) + ")" : ""));
    d.localRank = static_cast<int>(*localRank);
  }
  return d;
}

// Slurm's task counts per node: "2(x3),1" = 2, 2, 2, 1. Returns the entry of node `node`.
std::optional<int> slurmTasksOnNode(const std::string& spec, int64_t node) {
  std::stringstream ss(spec);
  std::string item;
  int64_t index = 0;
  while (std::getline(ss, item, ',')) {
    int count = 0, repeat = 1;
    if (std::sscanf(item.c_str(), "%d(x%d)", &count, &repeat) < 1 || count <= 0 || repeat <= 0)
      return std::nullopt;
    if (node < index + repeat) return count;
    index += repeat;
  }
  return std::nullopt;
}

Result<std::optional<Detected>> detectLoom(const Config& c) {
  if (c.launchRank == -1 && c.launchWorldSize == -1) return std::optional<Detected>();
  if (c.launchRank == -1) return invalidArgument("LOOM_WORLD_SIZE is set but LOOM_RANK is not");
  if (c.launchWorldSize == -1)
    return invalidArgument("LOOM_RANK is set but LOOM_WORLD_SIZE is not");
  // The Config holds these already parsed; route them through Vars' checks via a map.
  std::map<std::string, std::string> m{{"LOOM_RANK", std::to_string(c.launchRank)},
                                       {"LOOM_WORLD_SIZE", std::to_string(c.launchWorldSize)}};
  if (c.launchLocalRank != -1) m["LOOM_LOCAL_RANK"] = std::to_string(c.launchLocalRank);
  if (c.launchLocalSize != -1) m["LOOM_LOCAL_SIZE"] = std::to_string(c.launchLocalSize);
  MapEnvironment env(std::move(m));
  LOOM_ASSIGN_OR_RETURN(Detected d, readRanks(Vars(env), "loom", "LOOM_RANK", "LOOM_WORLD_SIZE",
                                              "LOOM_LOCAL_RANK", "LOOM_LOCAL_SIZE"));
  return std::optional<Detected>(d);
}

Result<Detected> readTorch(const Vars& v) {
  LOOM_ASSIGN_OR_RETURN(
      Detected d, readRanks(v, "torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"));
  if (v.has("TORCHELASTIC_RUN_ID"))
    d.jobId = v.str("TORCHELASTIC_RUN_ID") + "/" + v.str("TORCHELASTIC_RESTART_COUNT");
  else if (v.has("MASTER_ADDR") && v.has("MASTER_PORT"))
    d.jobId = v.str("MASTER_ADDR") + ":" + v.str("MASTER_PORT");
  return d;
}

Result<Detected> readOpenMpi(const Vars& v) {
  LOOM_ASSIGN_OR_RETURN(Detected d,
                        readRanks(v, "openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                                  "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"));
  d.jobId =
      v.has("OMPI_MCA_ess_base_jobid") ? v.str("OMPI_MCA_ess_base_jobid") : v.str("PMIX_NAMESPACE");
  return d;
}

Result<Detected> readMpich(const Vars& v, const ProcessInfo& process) {
  LOOM_ASSIGN_OR_RETURN(Detected d, readRanks(v, "mpich", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID",
                                              "MPI_LOCALNRANKS"));
  if (v.has("PMI_JOBID")) {
    d.jobId = v.str("PMI_JOBID");
  } else if (d.localSize == d.worldSize) {
    // Only ranks on one host share a proxy, so its pid names the job only when that is all.
    std::optional<int64_t> proxy = process.ancestorPid("hydra_pmi_proxy");
    if (proxy) d.jobId = "hydra-proxy-" + std::to_string(*proxy);
  }
  return d;
}

Result<Detected> readSlurm(const Vars& v) {
  const char* sizeName = v.has("SLURM_NTASKS") ? "SLURM_NTASKS" : "SLURM_NPROCS";
  LOOM_ASSIGN_OR_RETURN(Detected d,
                        readRanks(v, "slurm", "SLURM_PROCID", sizeName, "SLURM_LOCALID", nullptr));
  std::optional<int> local;
  LOOM_ASSIGN_OR_RETURN(std::optional<int64_t> perNode, v.optInt("SLURM_NTASKS_PER_NODE"));
  LOOM_ASSIGN_OR_RETURN(std::optional<int64_t> nodeId, v.optInt("SLURM_NODEID"));
  if (perNode) {
    local = static_cast<int>(*perNode);
  } else {
    std::string spec = v.has("SLURM_STEP_TASKS_PER_NODE") ? v.str("SLURM_STEP_TASKS_PER_NODE")
                                                          : v.str("SLURM_TASKS_PER_NODE");
    local = slurmTasksOnNode(spec, nodeId.value_or(0));
  }
  if (local && *local >= 1 && *local <= d.worldSize && d.localRank < *local) d.localSize = *local;
  std::string step = v.has("SLURM_STEP_ID") ? v.str("SLURM_STEP_ID") : v.str("SLURM_STEPID");
  d.jobId = v.str("SLURM_JOB_ID") + "." + step;
  d.singleHost = v.str("SLURM_STEP_NUM_NODES") == "1" || v.str("SLURM_NNODES") == "1";
  return d;
}

Result<std::optional<Detected>> detectForeign(const Vars& v, const ProcessInfo& process) {
  auto wrap = [](Result<Detected> r) -> Result<std::optional<Detected>> {
    if (!r.isOk()) return r.takeStatus();
    return std::optional<Detected>(std::move(r).value());
  };
  bool slurmStep = v.has("SLURM_PROCID") && (v.has("SLURM_STEP_ID") || v.has("SLURM_STEPID"));
  if (v.has("TORCHELASTIC_RUN_ID") && v.has("RANK")) return wrap(readTorch(v));
  if (v.has("OMPI_COMM_WORLD_RANK")) return wrap(readOpenMpi(v));
  if (v.has("PMI_RANK") && (v.has("MPI_LOCALRANKID") || !slurmStep))
    return wrap(readMpich(v, process));
  if (slurmStep) return wrap(readSlurm(v));
  if (v.has("RANK") && v.has("WORLD_SIZE")) return wrap(readTorch(v));
  return std::optional<Detected>();
}

// Rules 2-5 of the root (launcher.h). *spec is the root as written, for the derived secret.
Result<SocketAddress> findRoot(const Vars& v, const Config& config, const Detected& d,
                               std::string* spec) {
  if (!config.commId.empty()) {
    *spec = config.commId;
    Result<SocketAddress> a = SocketAddress::parse(config.commId);
    if (!a.isOk()) return a.status().withContext("LOOM_COMM_ID");
    if (a->port() == 0) return invalidArgument("LOOM_COMM_ID='" + config.commId + "' has port 0");
    return a;
  }
  if (v.has("MASTER_ADDR") && v.has("MASTER_PORT")) {
    LOOM_ASSIGN_OR_RETURN(int64_t port, parseInt("MASTER_PORT", v.str("MASTER_PORT")));
    if (port <= 0 || port >= 65535)
      return invalidArgument("MASTER_PORT=" + std::to_string(port) +
                             " leaves no port for loom's root (it uses MASTER_PORT + 1)");
    std::string host = v.str("MASTER_ADDR");
    if (host.find(':') != std::string::npos && host.front() != '[') host = "[" + host + "]";
    *spec = host + ":" + std::to_string(port + 1);
    Result<SocketAddress> a = SocketAddress::parse(*spec);
    if (!a.isOk()) return a.status().withContext("MASTER_ADDR/MASTER_PORT");
    return a;
  }
  bool oneHost = d.singleHost || d.localSize == d.worldSize;
  if (oneHost && !d.jobId.empty()) {
    SocketAddress a = SocketAddress::ipv4Loopback(derivedRootPort(d.launcher, d.jobId));
    *spec = a.toString();
    return a;
  }
  return invalidUsage(
      "this " + d.launcher + " job of " + std::to_string(d.worldSize) + " ranks " +
      (oneHost ? "has no job id" : "may span several hosts") +
      ", and nothing names its rendezvous root: set LOOM_COMM_ID=<host>:<port> (the host of "
      "rank 0 and a free port), the same for every rank");
}

Result<std::array<uint8_t, 16>> findSecret(const Config& config, const Detected& d,
                                           const std::string& rootSpec, bool* derived) {
  std::array<uint8_t, 16> secret{};
  if (!config.secret.empty()) {
    if (config.secret.size() != 32 ||
        !loom::fromHex(config.secret, secret.data(), secret.size()).isOk())
      return invalidArgument("LOOM_SECRET must be 32 hex digits (got " +
                             std::to_string(config.secret.size()) + " characters)");
    *derived = false;
    return secret;
  }
  Sha256 h;
  std::string material = "loom-derived-secret\n" + d.launcher + "\n" + d.jobId + "\n" +
                         std::to_string(d.worldSize) + "\n" + rootSpec;
  h.update(material.data(), material.size());
  Digest digest = h.finish();
  std::memcpy(secret.data(), digest.data(), secret.size());
  *derived = true;
  return secret;
}

class RealProcessInfo final : public ProcessInfo {
 public:
  std::optional<int64_t> ancestorPid(std::string_view name) const override {
    int64_t pid = ::getppid();
    for (int depth = 0; depth < 64 && pid > 1; ++depth) {
      std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
      std::string got;
      if (!std::getline(comm, got)) return std::nullopt;
      if (got == name) return pid;
      // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
      std::ifstream statFile("/proc/" + std::to_string(pid) + "/stat");
      std::string stat((std::istreambuf_iterator<char>(statFile)),
                       std::istreambuf_iterator<char>());
      size_t close = stat.rfind(')');
      if (close == std::string::npos) return std::nullopt;
      char state = 0;
      long long ppid = 0;
      if (std::sscanf(stat.c_str() + close + 1, " %c %lld", &state, &ppid) != 2)
        return std::nullopt;
      pid = ppid;
    }
    return std::nullopt;
  }
};

}  // namespace

UniqueId LaunchInfo::rendezvousId() const {
  if (uniqueId) return *uniqueId;
  UniqueId id;
  if (root) id.root = *root;
  id.secret = secret;
  return id;
}

const ProcessInfo& ProcessInfo::current() {
  static const RealProcessInfo info;
  return info;
}

uint16_t derivedRootPort(const std::string& launcher, const std::string& jobId) {
  return static_cast<uint16_t>(kDerivedPortBase +
                               hash64(launcher + "/" + jobId) % kDerivedPortSpan);
}

Result<LaunchInfo> detectLaunch(const Environment& env, const Config& config) {
  return detectLaunch(env, config, ProcessInfo::current());
}

Result<LaunchInfo> detectLaunch(const Environment& env, const Config& config,
                                const ProcessInfo& process) {
  Vars v(env);
  LOOM_ASSIGN_OR_RETURN(std::optional<Detected> d, detectLoom(config));
  if (!d) {
    LOOM_ASSIGN_OR_RETURN(d, detectForeign(v, process));
  }
  if (!d)
    return invalidUsage(
        "no launcher detected: start the job with loomrun, mpirun, mpiexec, srun or torchrun, or "
        "set LOOM_RANK and LOOM_WORLD_SIZE (and LOOM_COMM_ID) yourself");
  LaunchInfo info;
  info.launcher = d->launcher;
  info.rank = d->rank;
  info.worldSize = d->worldSize;
  info.localRank = d->localRank;
  info.localSize = d->localSize;
  info.jobId = d->jobId;
  if (!config.uniqueId.empty()) {
    Result<UniqueId> id = UniqueId::fromHex(config.uniqueId);
    if (!id.isOk()) return id.status().withContext("LOOM_UNIQUE_ID");
    info.uniqueId = *id;
    info.root = id->root;
    info.secret = id->secret;
    return info;
  }
  if (d->launcher == "loom" && config.commId.empty())
    return invalidUsage(
        "LOOM_RANK is set but neither LOOM_UNIQUE_ID nor LOOM_COMM_ID names the "
        "rendezvous root (loomrun sets LOOM_UNIQUE_ID)");
  std::string rootSpec;
  LOOM_ASSIGN_OR_RETURN(info.root, findRoot(v, config, *d, &rootSpec));
  LOOM_ASSIGN_OR_RETURN(info.secret, findSecret(config, *d, rootSpec, &info.secretIsDerived));
  return info;
}

Result<std::shared_ptr<TcpStoreClient>> connectLaunchStore(const LaunchInfo& info,
                                                           Deadline deadline,
                                                           const std::atomic<bool>* cancel) {
  if (!info.root && !info.uniqueId)
    return invalidArgument("connectLaunchStore: the LaunchInfo names no rendezvous root");
  UniqueId id = info.rendezvousId();
  // One store per job and rank in a process: a second call shares the first's connection
  // instead of starting a second root on a port the first one holds.
  static std::mutex cacheMu;
  static auto* cache = new std::map<std::string, std::weak_ptr<TcpStoreClient>>();
  std::lock_guard<std::mutex> lock(cacheMu);
  std::string key =
      id.toHex() + "/" + std::to_string(info.rank) + "/" + std::to_string(info.worldSize);
  if (std::shared_ptr<TcpStoreClient> live = (*cache)[key].lock()) return live;
  if (info.startsRoot()) {
    SocketAddress bind = id.root;
    if (!bind.isLoopback()) {
      // Listen on every interface: the name ranks use (MASTER_ADDR, LOOM_COMM_ID) may resolve
      // to any of this host's addresses, and the handshake, not the bind, keeps strangers out.
      sockaddr_storage ss{};
      socklen_t len;
      if (bind.family() == AF_INET6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_any;
        len = sizeof(sockaddr_in6);
      } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_ANY);
        len = sizeof(sockaddr_in);
      }
      LOOM_ASSIGN_OR_RETURN(bind, SocketAddress::fromRaw(reinterpret_cast<sockaddr*>(&ss), len));
      bind.setPort(id.root.port());
    }
    Result<SocketAddress> started = startDetachedRoot(bind, id.secret);
    if (!started.isOk())
      return started.status().withContext(
          "rank 0 of this " + info.launcher + " job could not start the rendezvous root at " +
          id.root.toString() + " (another job on that port? set LOOM_COMM_ID to a free host:port)");
    if (info.secretIsDerived) {
      LOOM_LOG(kInfo, kBootstrap) << "rendezvous root at " << id.root.toString()
                                  << " uses a secret derived from the " << info.launcher
                                  << " job id; set LOOM_SECRET for protection against attackers";
    }
  }
  LOOM_ASSIGN_OR_RETURN(std::shared_ptr<TcpStoreClient> client,
                        TcpStoreClient::connect(id, info.rank, info.worldSize, deadline, cancel));
  (*cache)[key] = client;
  return client;
}

}  // namespace loom::bootstrap
