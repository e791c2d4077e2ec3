#include "loom_topo_ranks.h"

#include <unistd.h>

#include <climits>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "base/config.h"
#include "launch/launch.h"
#include "launch/process_env.h"
#include "runtime/init.h"
#include "topology/cpuset.h"

namespace loom::tools {

namespace {

using runtime::TopoView;

// Whether a launcher started this process (the variables bootstrap/launcher.h reads).
bool startedByLauncher() {
  using launch::environmentValue;
  if (environmentValue("LOOM_RANK") || environmentValue("OMPI_COMM_WORLD_RANK") ||
      environmentValue("PMI_RANK"))
    return true;
  if (environmentValue("SLURM_PROCID") && environmentValue("SLURM_STEP_ID")) return true;
  return environmentValue("RANK") && environmentValue("WORLD_SIZE");
}

std::string selfPath(const char* argv0) {
  char buf[PATH_MAX] = {};
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string(argv0);
}

std::string jsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// nvidia-smi's cells, except that two ranks at one place are LOC (X is the rank itself).
std::string cell(const TopoView& v, int a, int b) {
  if (a != b && v.path(a, b).type == topo::PathType::kLoc) return "LOC";
  return topo::matrixCell(v.path(a, b));
}

std::string renderJson(const TopoView& v) {
  const topo::HostMap& hosts = v.hosts();
  std::string out = "{\"nranks\": " + std::to_string(v.nranks()) +
                    ", \"nhosts\": " + std::to_string(hosts.nhosts()) + ",\n \"hosts\": [";
  for (int h = 0; h < hosts.nhosts(); ++h) {
    const runtime::RankPlace& first = v.place(hosts.ranksOn(h).front());
    out += std::string(h ? ",\n  " : "\n  ") + "{\"host\": " + std::to_string(h) +
           ", \"name\": " + jsonString(first.hostName) + ", \"id\": " + jsonString(first.hostId) +
           ", \"topology\": " + (v.system(h) ? "true" : "false") + ", \"ranks\": [";
    for (size_t i = 0; i < hosts.ranksOn(h).size(); ++i)
      out += (i ? ", " : "") + std::to_string(hosts.ranksOn(h)[i]);
    out += "]}";
  }
  out += "],\n \"ranks\": [";
  for (int r = 0; r < v.nranks(); ++r) {
    const runtime::RankPlace& p = v.place(r);
    out += std::string(r ? ",\n  " : "\n  ") + "{\"rank\": " + std::to_string(r) +
           ", \"host\": " + std::to_string(hosts.hostOf(r)) +
           ", \"local_rank\": " + std::to_string(hosts.localRank(r)) +
           ", \"hostname\": " + jsonString(p.hostName) + ", \"pid\": " + std::to_string(p.pid) +
           ", \"numa\": " + std::to_string(p.numa) + ", \"gpu\": " + std::to_string(p.gpu) +
           ", \"cpus\": " + jsonString(topo::formatCpuList(p.cpus)) + "}";
  }
  out += "],\n \"paths\": [";
  for (int a = 0; a < v.nranks(); ++a) {
    out += a ? ",\n  [" : "\n  [";
    for (int b = 0; b < v.nranks(); ++b)
      out += (b ? ", " : "") + jsonString(cell(v, a, b));
    out += "]";
  }
  return out + "]}\n";
}

std::string renderText(const TopoView& v) {
  const topo::HostMap& hosts = v.hosts();
  std::string out = "Communicator of " + std::to_string(v.nranks()) + " rank(s) on " +
                    std::to_string(hosts.nhosts()) + " host(s)\n\n";
  char buf[512];
  std::snprintf(buf, sizeof(buf), "  %-5s %-5s %-16s %-8s %-5s %-4s %s\n", "rank", "host",
                "hostname", "pid", "NUMA", "GPU", "CPUs");
  out += buf;
  for (int r = 0; r < v.nranks(); ++r) {
    const runtime::RankPlace& p = v.place(r);
    std::snprintf(buf, sizeof(buf), "  %-5d %-5d %-16s %-8lld %-5s %-4s %s\n", r, hosts.hostOf(r),
                  p.hostName.c_str(), static_cast<long long>(p.pid),
                  p.numa >= 0 ? std::to_string(p.numa).c_str() : "-",
                  p.gpu >= 0 ? std::to_string(p.gpu).c_str() : "-",
                  topo::formatCpuList(p.cpus).c_str());
    out += buf;
  }
  out += "\n";
  for (int h = 0; h < hosts.nhosts(); ++h) {
    const runtime::RankPlace& first = v.place(hosts.ranksOn(h).front());
    out += "Host " + std::to_string(h) + " (" + first.hostName + ", id " +
           first.hostId.substr(0, 40) + "): ranks";
    for (int r : hosts.ranksOn(h))
      out += " " + std::to_string(r);
    out += v.system(h) ? "\n" : " (no topology: discovery failed)\n";
  }
  out +=
      "\nPath between ranks (X self, NET different hosts; the legend is loom-topo --matrix's):\n";
  std::snprintf(buf, sizeof(buf), "%-6s", "");
  out += buf;
  for (int b = 0; b < v.nranks(); ++b) {
    std::snprintf(buf, sizeof(buf), "%-6s", ("r" + std::to_string(b)).c_str());
    out += buf;
  }
  out += "\n";
  for (int a = 0; a < v.nranks(); ++a) {
    std::snprintf(buf, sizeof(buf), "%-6s", ("r" + std::to_string(a)).c_str());
    out += buf;
    for (int b = 0; b < v.nranks(); ++b) {
      std::snprintf(buf, sizeof(buf), "%-6s", cell(v, a, b).c_str());
      out += buf;
    }
    out += "\n";
  }
  return out;
}

std::vector<std::string> argsWithoutNp(int argc, char** argv) {
  std::vector<std::string> out;
  for (int i = 0; i < argc; ++i) {
    if (std::string(argv[i]) == "-np" && i + 1 < argc) {
      ++i;
      continue;
    }
    out.emplace_back(argv[i]);
  }
  return out;
}

}  // namespace

int showRanks(int np, int threads, bool json, int argc, char** argv) {
  const bool launched = startedByLauncher();
  if (np > 0 && !launched) {
    launch::JobSpec spec;
    spec.command = argsWithoutNp(argc, argv);
    spec.command[0] = selfPath(argv[0]);
    spec.localRanks = np;
    spec.name = "loom-topo";
    return launch::runJob(spec);
  }
  const Environment& env = Environment::process();
  Result<Config> config = Config::fromEnvironment(env);
  if (!config.isOk()) {
    std::fprintf(stderr, "loom-topo: %s\n", config.status().toString().c_str());
    return 1;
  }
  std::vector<std::unique_ptr<runtime::Communicator>> comms;
  Status status;
  if (launched) {
    auto c = runtime::initFromEnvironment(env, *config, "loom-topo");
    if (c.isOk())
      comms.push_back(std::move(c).value());
    else
      status = c.status();
  } else {
    auto all = runtime::initAll(threads, *config, "loom-topo");
    if (all.isOk())
      comms = std::move(all).value();
    else
      status = all.status();
  }
  if (!status.isOk()) {
    std::fprintf(stderr, "loom-topo: starting the communicator: %s\n", status.toString().c_str());
    return 1;
  }
  if (comms.front()->rank() == 0) {
    const TopoView& v = comms.front()->topology();
    std::fputs((json ? renderJson(v) : renderText(v)).c_str(), stdout);
    std::fflush(stdout);
  }
  int rc = 0;
  for (auto& c : comms) {
    if (Status q = c->quiesce(); !q.isOk()) {
      std::fprintf(stderr, "loom-topo: %s\n", q.toString().c_str());
      rc = 1;
    }
  }
  return rc;
}

}  // namespace loom::tools
