// loom-sim - plans a collective on a topology that need not be here and simulates its schedule
// (DESIGN.md section 7; algorithms/simulate.h says what is modelled).
//
// For every size of an nccl-tests sweep (-b -e -f) it builds the schedule the planner chooses
// (or --algo forces), replays it on the topology's links with contention, and prints the
// predicted time, algbw and busbw (nccl-tests' busbw factors). --explain lists the schedule and
// --timeline draws it for the first size.
//
// Exit status: 0; 1 when the topology cannot be read or a simulation fails; 2 on bad usage.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "algorithms/cost_model.h"
#include "algorithms/planner.h"
#include "algorithms/simulate.h"
#include "sim_report.h"
#include "topology/cluster.h"
#include "topology/synthetic.h"
#include "topology/xml.h"

namespace {

using loom::Result;
using loom::Status;
namespace algo = loom::algo;
namespace topo = loom::topo;

const char kUsage[] =
    "usage: loom-sim TOPOLOGY [COLLECTIVE] [SIZES] [OPTIONS]\n"
    "Topology (one):\n"
    "  --topo FILE          a host (<system>, as loom-topo --dump writes) or a cluster file\n"
    "  --synthetic NAME     a built-in host: dgx-h100, pcie-4gpu\n"
    "  --dgx-h100 N         N DGX-H100-like hosts (8 GPUs, 8 x 400 Gb/s NICs each) on a\n"
    "                       rail-optimised fat tree (1..4096)\n"
    "  --hosts-per-leaf K   with --dgx-h100: hosts under one leaf switch (default 32)\n"
    "Collective and sizes (nccl-tests semantics):\n"
    "  -c, --collective C   allreduce (default), allgather, reducescatter, broadcast, reduce,\n"
    "                       alltoall\n"
    "  -b SIZE, -e SIZE     smallest and largest size in bytes (K, M, G suffixes; default 8,\n"
    "                       128M); -f F: multiply by F between sizes (default 2)\n"
    "  --nranks N           ranks (default: every GPU; hosts without GPUs: 2)\n"
    "Plan and model:\n"
    "  --algo NAME          force an algorithm; 'all' simulates every one that supports the call\n"
    "  --channels N         channels the algorithm may use (default 1)\n"
    "  --slice BYTES        the executor's slice (default 512K); --step-us US: per-step overhead\n"
    "                       (default 0.4)\n"
    "  --method M           auto (default), exact or rounds (simulate.h)\n"
    "Output:\n"
    "  --explain            print the schedule of the first size (summarised for many ranks)\n"
    "  --timeline FILE.svg  draw the first size as a per-rank and per-link timeline\n";

struct Options {
  std::string topoFile, synthetic, collective = "allreduce", algo, method = "auto", timeline;
  int dgx = 0, hostsPerLeaf = 32, nranks = 0, channels = 1;
  uint64_t minBytes = 8, maxBytes = 128ull << 20, factor = 2, sliceBytes = 512 * 1024;
  double stepUs = 0.4;
  bool explain = false;
};

int usageError(const std::string& message) {
  std::fprintf(stderr, "loom-sim: %s\n\n%s", message.c_str(), kUsage);
  return 2;
}

bool parseInt(const std::string& s, int lo, int hi, int* out) {
  char* end = nullptr;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (end == s.c_str() || *end != '\0' || v < lo || v > hi) return false;
  *out = static_cast<int>(v);
  return true;
}

bool parseBytes(const std::string& s, uint64_t* out) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || v < 0) return false;
  double unit = 1;
  const std::string rest(end);
  if (rest == "K" || rest == "k")
    unit = 1024.0;
  else if (rest == "M" || rest == "m")
    unit = 1024.0 * 1024;
  else if (rest == "G" || rest == "g")
    unit = 1024.0 * 1024 * 1024;
  else if (!rest.empty())
    return false;
  if (v * unit > 1e15) return false;
  *out = static_cast<uint64_t>(v * unit);
  return true;
}

bool parseDouble(const std::string& s, double* out) {
  char* end = nullptr;
  *out = std::strtod(s.c_str(), &end);
  return end != s.c_str() && *end == '\0' && *out >= 0;
}

// 0: parsed; 1: --help printed; 2: error printed.
int parseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    std::string v;
    auto value = [&]() {
      if (i + 1 >= argc) return false;
      v = argv[++i];
      return true;
    };
    bool ok = true;
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 1;
    } else if (a == "--explain") {
      o->explain = true;
    } else if (a == "--topo" && value()) {
      o->topoFile = v;
    } else if (a == "--synthetic" && value()) {
      o->synthetic = v;
    } else if (a == "--dgx-h100" && value()) {
      ok = parseInt(v, 1, 4096, &o->dgx);
    } else if (a == "--hosts-per-leaf" && value()) {
      ok = parseInt(v, 1, 4096, &o->hostsPerLeaf);
    } else if ((a == "-c" || a == "--collective") && value()) {
      o->collective = v;
    } else if (a == "-b" && value()) {
      ok = parseBytes(v, &o->minBytes);
    } else if (a == "-e" && value()) {
      ok = parseBytes(v, &o->maxBytes);
    } else if (a == "-f" && value()) {
      int f = 0;
      ok = parseInt(v, 2, 1024, &f);
      o->factor = static_cast<uint64_t>(f);
    } else if (a == "--nranks" && value()) {
      ok = parseInt(v, 1, 1 << 20, &o->nranks);
    } else if (a == "--algo" && value()) {
      o->algo = v;
    } else if (a == "--channels" && value()) {
      ok = parseInt(v, 1, 64, &o->channels);
    } else if (a == "--slice" && value()) {
      ok = parseBytes(v, &o->sliceBytes) && o->sliceBytes > 0;
    } else if (a == "--step-us" && value()) {
      ok = parseDouble(v, &o->stepUs);
    } else if (a == "--method" && value()) {
      o->method = v;
      ok = v == "auto" || v == "exact" || v == "rounds";
    } else if (a == "--timeline" && value()) {
      o->timeline = v;
    } else {
      return usageError("unknown or incomplete argument '" + a + "'");
    }
    if (!ok) return usageError("bad value '" + v + "' for " + a);
  }
  if (!o->topoFile.empty() + !o->synthetic.empty() + (o->dgx > 0) != 1)
    return usageError("give one topology: --topo, --synthetic or --dgx-h100");
  if (o->minBytes > o->maxBytes) return usageError("-b is larger than -e");
  return 0;
}

// The machine: what the network's routes and names point into, kept alive for the run.
struct Machine {
  std::unique_ptr<topo::System> host;
  std::unique_ptr<topo::Cluster> cluster;
  std::unique_ptr<algo::SimNetwork> network;
  std::vector<int> ranksPerHost;  // for the hierarchical algorithms' host layout
  std::string description;
};

Result<topo::XmlNode> readTree(const Options& o) {
  if (o.dgx > 0) return topo::makeRailCluster(o.dgx, o.hostsPerLeaf);
  if (!o.synthetic.empty()) return topo::makeSynthetic(o.synthetic, o.synthetic);
  return topo::loadXmlFile(o.topoFile);
}

Result<Machine> loadMachine(const Options& o) {
  LOOM_ASSIGN_OR_RETURN(topo::XmlNode tree, readTree(o));
  Machine m;
  if (tree.name == "cluster") {
    LOOM_ASSIGN_OR_RETURN(topo::Cluster c, topo::Cluster::fromXml(tree));
    m.cluster = std::make_unique<topo::Cluster>(std::move(c));
    int gpus = 0;
    for (int h = 0; h < m.cluster->nhosts(); ++h)
      gpus += m.cluster->host(h).count(topo::NodeType::kGpu);
    const int n = o.nranks > 0 ? o.nranks : gpus;
    LOOM_ASSIGN_OR_RETURN(m.network, algo::makeClusterNetwork(*m.cluster, n));
    for (int h = 0, left = n; h < m.cluster->nhosts() && left > 0; ++h) {
      const int here = std::min(left, m.cluster->host(h).count(topo::NodeType::kGpu));
      if (here > 0) m.ranksPerHost.push_back(here);
      left -= here;
    }
    m.description = std::to_string(m.cluster->nhosts()) + " host(s), rail-optimised fat tree (" +
                    std::to_string(m.cluster->hostsPerLeaf()) + " hosts per leaf)";
    return m;
  }
  LOOM_ASSIGN_OR_RETURN(topo::System s, topo::System::fromXml(tree));
  m.host = std::make_unique<topo::System>(std::move(s));
  const int gpus = m.host->count(topo::NodeType::kGpu);
  if (gpus == 0) {
    // No GPUs: ranks are processes on shared memory, each with the cost model's intra link.
    const algo::CostModel model;
    const int n = o.nranks > 0 ? o.nranks : 2;
    m.network = std::make_unique<algo::UniformNetwork>(n, model.intra.alphaUs, model.intra.gbps,
                                                       model.reduceGbps);
    m.ranksPerHost = {n};
    m.description = "host " + m.host->hostName() +
                    " without GPUs: ranks on shared memory (cost model defaults)";
    return m;
  }
  const int n = o.nranks > 0 ? o.nranks : gpus;
  LOOM_ASSIGN_OR_RETURN(m.network, algo::makeHostNetwork(*m.host, n));
  m.ranksPerHost = {n};
  m.description = "host " + m.host->hostName() + " (" + std::to_string(gpus) + " GPUs)";
  return m;
}

// The planner's view of the machine: α and bandwidth of a route inside a host and between two
// hosts, the rank's compute link for γ.
void plannerModel(const Machine& m, double stepUs, algo::CostModel* model,
                  algo::Topology* topology) {
  const algo::SimNetwork& net = *m.network;
  auto linkOf = [&](int a, int b, algo::LinkCost* out) {
    algo::SimRoute route;
    if (!net.route(a, b, &route).isOk()) return;
    double gbps = 1e18;
    for (int l : route.links)
      gbps = std::min(gbps, net.links()[static_cast<size_t>(l)].gbps);
    *out = {route.latencyUs, gbps};
  };
  const int first = m.ranksPerHost.front();
  if (first > 1) linkOf(0, 1, &model->intra);
  if (m.ranksPerHost.size() > 1) linkOf(0, first, &model->inter);
  if (net.nranks() > 0)
    model->reduceGbps = net.links()[static_cast<size_t>(net.computeLink(0))].gbps;
  model->stepUs = stepUs;
  topology->nhosts = static_cast<int>(m.ranksPerHost.size());
  topology->maxRanksPerHost = *std::max_element(m.ranksPerHost.begin(), m.ranksPerHost.end());
}

struct CollectiveInfo {
  algo::Collective collective;
  bool perRank;      // the count is per rank (size / nranks), as nccl-tests
  double busFactor;  // busbw factor for n ranks, computed below
};

bool collectiveOf(const std::string& name, int n, CollectiveInfo* out) {
  const double nn = n;
  if (name == "allreduce" || name == "all_reduce")
    *out = {algo::Collective::kAllReduce, false, 2 * (nn - 1) / nn};
  else if (name == "allgather" || name == "all_gather")
    *out = {algo::Collective::kAllGather, true, (nn - 1) / nn};
  else if (name == "reducescatter" || name == "reduce_scatter")
    *out = {algo::Collective::kReduceScatter, true, (nn - 1) / nn};
  else if (name == "alltoall")
    *out = {algo::Collective::kAllToAll, true, (nn - 1) / nn};
  else if (name == "broadcast")
    *out = {algo::Collective::kBroadcast, false, 1};
  else if (name == "reduce")
    *out = {algo::Collective::kReduce, false, 1};
  else
    return false;
  return true;
}

struct Run {
  const Options& o;
  const Machine& m;
  CollectiveInfo info;
  algo::CostModel model;
  algo::Topology topology;
  algo::SimOptions sim;

  algo::CollectiveArgs argsFor(uint64_t bytes) const {
    algo::CollectiveArgs args;
    args.collective = info.collective;
    args.nranks = m.network->nranks();
    args.nchannels = o.channels;
    const uint64_t elements = bytes / 4;
    args.count = info.perRank ? elements / static_cast<uint64_t>(args.nranks) : elements;
    if (m.ranksPerHost.size() > 1) args.hosts = algo::HostLayout::blocks(m.ranksPerHost);
    return args;
  }

  // The algorithms to simulate for a call: the forced one, all, or the planner's choice.
  Result<std::vector<const algo::Algorithm*>> algorithmsFor(const algo::CollectiveArgs& args,
                                                            double* plannedUs) const {
    std::vector<const algo::Algorithm*> out;
    *plannedUs = -1;
    if (o.algo == "all") {
      for (const algo::Algorithm* a : algo::algorithmsFor(args.collective))
        if (a->supports(args)) out.push_back(a);
      return out;
    }
    algo::AlgoOverrides overrides;
    if (!o.algo.empty()) {
      LOOM_ASSIGN_OR_RETURN(
          overrides, algo::parseAlgoOverrides(std::string(algo::collectiveName(args.collective)) +
                                              ":" + o.algo));
    }
    algo::Choice choice;
    LOOM_ASSIGN_OR_RETURN(const algo::Algorithm* a,
                          algo::chooseAlgorithm(args, 4, overrides, model, topology, &choice));
    *plannedUs = choice.predictedUs;
    out.push_back(a);
    return out;
  }

  Result<algo::SimResult> simulate(const algo::Algorithm& a, const algo::CollectiveArgs& args,
                                   bool record) const {
    algo::SimOptions so = sim;
    so.record = record;
    if (o.method == "exact") so.maxExactSteps = UINT64_MAX;
    if (o.method == "rounds") {
      const algo::RankBuilder build = [&](int rank, algo::RankSchedule* out) {
        return a.build(args, rank, out);
      };
      return algo::simulateRounds(args, build, *m.network, so);
    }
    return algo::simulateAlgorithm(a, args, *m.network, so);
  }
};

int fail(const Status& s) {
  std::fprintf(stderr, "loom-sim: %s\n", s.toString().c_str());
  return 1;
}

Status writeFile(const std::string& path, const std::string& text) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return loom::systemErrorFromErrno("open " + path, errno);
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok) return loom::systemError("cannot write " + path);
  return Status::ok();
}

// --explain and --timeline, for the first size.
Status firstSizeOutputs(const Run& run, uint64_t bytes) {
  const algo::CollectiveArgs args = run.argsFor(bytes);
  double planned = 0;
  LOOM_ASSIGN_OR_RETURN(std::vector<const algo::Algorithm*> algos,
                        run.algorithmsFor(args, &planned));
  for (const algo::Algorithm* a : algos) {
    if (run.o.explain) {
      LOOM_ASSIGN_OR_RETURN(std::string text,
                            loom::tools::explainSchedule(*a, args, *run.m.network, 4));
      std::printf("%s\n", text.c_str());
    }
  }
  if (run.o.timeline.empty()) return Status::ok();
  const algo::Algorithm& a = *algos.front();
  algo::Schedule schedule;
  LOOM_RETURN_IF_ERROR(algo::buildAll(a, args, &schedule));
  algo::SimOptions so = run.sim;
  so.record = true;
  Result<algo::SimResult> r = algo::simulate(schedule, *run.m.network, so);
  if (!r.isOk()) return r.status().withContext("--timeline needs an exact simulation");
  char title[256];
  std::snprintf(title, sizeof title, "%s:%s  %llu bytes  %d ranks  predicted %.2f us (%s)",
                algo::collectiveName(args.collective), std::string(a.name()).c_str(),
                static_cast<unsigned long long>(bytes), args.nranks, r->timeUs, r->method.c_str());
  LOOM_RETURN_IF_ERROR(
      writeFile(run.o.timeline, loom::tools::timelineSvg(*r, *run.m.network, title)));
  std::printf("# timeline of %s written to %s\n", std::string(a.name()).c_str(),
              run.o.timeline.c_str());
  return Status::ok();
}

Status sweep(const Run& run) {
  std::printf("# %12s %12s %6s  %-20s %12s %9s %9s %12s %8s  %s\n", "size", "count", "type",
              "algorithm", "time(us)", "algbw", "busbw", "planner(us)", "sim(s)", "method");
  for (uint64_t bytes = run.o.minBytes; bytes <= run.o.maxBytes; bytes *= run.o.factor) {
    const algo::CollectiveArgs args = run.argsFor(bytes);
    double planned = -1;
    LOOM_ASSIGN_OR_RETURN(std::vector<const algo::Algorithm*> algos,
                          run.algorithmsFor(args, &planned));
    for (const algo::Algorithm* a : algos) {
      const auto start = std::chrono::steady_clock::now();
      Result<algo::SimResult> r = run.simulate(*a, args, false);
      const double wall =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (!r.isOk()) {
        std::printf("  %12llu %12llu %6s  %-20s %12s  (%s)\n",
                    static_cast<unsigned long long>(bytes),
                    static_cast<unsigned long long>(args.count), "float",
                    std::string(a->name()).c_str(), "-", r.status().message().c_str());
        continue;
      }
      const double used =
          static_cast<double>(args.count * 4) * (run.info.perRank ? args.nranks : 1);
      const double algbw = r->timeUs > 0 ? used / r->timeUs / 1e3 : 0;
      char plannedText[32] = "-";
      if (planned >= 0) std::snprintf(plannedText, sizeof plannedText, "%.2f", planned);
      std::printf("  %12llu %12llu %6s  %-20s %12.2f %9.2f %9.2f %12s %8.2f  %s\n",
                  static_cast<unsigned long long>(bytes),
                  static_cast<unsigned long long>(args.count), "float",
                  std::string(a->name()).c_str(), r->timeUs, algbw, algbw * run.info.busFactor,
                  plannedText, wall, r->method.c_str());
    }
    if (bytes > UINT64_MAX / run.o.factor) break;
  }
  return Status::ok();
}

}  // namespace

int main(int argc, char** argv) {
  setlinebuf(stdout);
  Options o;
  if (int r = parseArgs(argc, argv, &o); r != 0) return r == 1 ? 0 : 2;
  Result<Machine> m = loadMachine(o);
  if (!m.isOk()) return fail(m.status());
  const int n = m->network->nranks();
  Run run{o, *m, {}, {}, {}, {}};
  if (!collectiveOf(o.collective, n, &run.info))
    return usageError("unknown collective '" + o.collective + "'");
  plannerModel(*m, o.stepUs, &run.model, &run.topology);
  run.sim.elementBytes = 4;
  run.sim.sliceBytes = o.sliceBytes;
  run.sim.stepUs = o.stepUs;
  run.sim.roundPeriod = m->ranksPerHost.front();
  std::printf("# loom-sim: %s on %d ranks of %s; float, %d channel(s), slice %llu B\n",
              o.collective.c_str(), n, m->description.c_str(), o.channels,
              static_cast<unsigned long long>(o.sliceBytes));
  std::printf(
      "# planner model: intra %.2f us %.1f GB/s, inter %.2f us %.1f GB/s, reduce %.0f GB/s\n",
      run.model.intra.alphaUs, run.model.intra.gbps, run.model.inter.alphaUs, run.model.inter.gbps,
      run.model.reduceGbps);
  if (o.explain || !o.timeline.empty()) {
    if (Status s = firstSizeOutputs(run, o.minBytes); !s.isOk()) return fail(s);
  }
  if (Status s = sweep(run); !s.isOk()) return fail(s);
  return 0;
}
