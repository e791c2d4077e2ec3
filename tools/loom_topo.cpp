// loom-topo - what this machine looks like to loom (DESIGN.md section 7): CPUs, NUMA nodes,
// the PCI tree, GPUs, NVLink and NICs as a tree (like `lstopo --of console`), the device matrix
// (like `nvidia-smi topo -m`), and with --ranks where the ranks of a communicator are.
//
// It reads internal tables (topology, the runtime's fused view), so it links loom_internal.
// Exit status: 0; 1 when the topology cannot be read or a communicator fails; 2 on bad usage.
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "loom_features.h"
#include "loom_topo_ranks.h"
#include "topo_print.h"
#include "topology/cluster.h"
#include "topology/discover.h"
#include "topology/synthetic.h"

namespace {

const char kUsage[] =
    "usage: loom-topo [SOURCE] [OUTPUT...]\n"
    "Source (default: discover this host; LOOM_TOPO_FILE is not consulted):\n"
    "  --load FILE        a topology file (XML as --dump, LOOM_TOPO_DUMP_FILE or NCCL's\n"
    "                     NCCL_TOPO_DUMP_FILE write)\n"
    "  --root DIR         discover from a fake sysfs/procfs tree under DIR\n"
    "  --synthetic NAME   a built-in machine: pcie-4gpu, dgx-h100\n"
    "  --cluster N        N dgx-h100 hosts on a rail-optimised fat tree (summary; --dump writes\n"
    "                     the cluster file)\n"
    "Output (default: discovery notes, summary, tree and matrix):\n"
    "  --tree             only the tree (like lstopo --of console)\n"
    "  --matrix           only the device matrix (like nvidia-smi topo -m)\n"
    "  --json             the topology as JSON instead of text\n"
    "  --dump FILE        write the topology as XML to FILE ('-': standard output)\n"
    "  --ranks            start a communicator and print where its ranks are: host, pid, NUMA\n"
    "                     node, GPU, CPUs, and the path class between every two ranks\n"
    "  -np N              with --ranks: N local ranks as processes (like loomrun)\n"
    "  -t T               with --ranks: T ranks as threads of this process (default 1)\n"
    "Under loomrun, mpirun, srun or torchrun, --ranks shows the launcher's ranks.\n";

struct Options {
  std::string load, root, synthetic, dump;
  int cluster = 0;
  bool tree = false, matrix = false, json = false, ranks = false;
  int np = 0, threads = 1;
};

int usageError(const std::string& message) {
  std::fprintf(stderr, "loom-topo: %s\n\n%s", message.c_str(), kUsage);
  return 2;
}

bool parseInt(const char* s, int lo, int hi, int* out) {
  char* end = nullptr;
  const long v = std::strtol(s, &end, 10);
  if (end == s || *end != '\0' || v < lo || v > hi) return false;
  *out = static_cast<int>(v);
  return true;
}

// 0: parsed; 1: --help printed; 2: error printed.
int parseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    std::string v;
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 1;
    } else if (a == "--tree") {
      o->tree = true;
    } else if (a == "--matrix") {
      o->matrix = true;
    } else if (a == "--json") {
      o->json = true;
    } else if (a == "--ranks") {
      o->ranks = true;
    } else if ((a == "--load" && value(&o->load)) || (a == "--root" && value(&o->root)) ||
               (a == "--synthetic" && value(&o->synthetic)) || (a == "--dump" && value(&o->dump))) {
    } else if (a == "--cluster" && value(&v)) {
      if (!parseInt(v.c_str(), 1, 4096, &o->cluster)) return usageError("bad --cluster " + v), 2;
    } else if (a == "-np" && value(&v)) {
      if (!parseInt(v.c_str(), 1, 1024, &o->np)) return usageError("bad -np " + v), 2;
    } else if (a == "-t" && value(&v)) {
      if (!parseInt(v.c_str(), 1, 256, &o->threads)) return usageError("bad -t " + v), 2;
    } else {
      return usageError("unknown or incomplete argument '" + a + "'"), 2;
    }
  }
  const int sources =
      !o->load.empty() + !o->root.empty() + !o->synthetic.empty() + (o->cluster > 0);
  if (sources > 1) return usageError("give at most one of --load, --root, --synthetic, --cluster");
  if (o->np > 0 && !o->ranks) return usageError("-np needs --ranks");
  return 0;
}

bool writeText(const std::string& path, const std::string& text) {
  if (path == "-") return std::fwrite(text.data(), 1, text.size(), stdout) == text.size();
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  return std::fclose(f) == 0 && ok;
}

int fail(const loom::Status& s) {
  std::fprintf(stderr, "loom-topo: %s\n", s.toString().c_str());
  return 1;
}

int showCluster(const Options& o) {
  loom::Result<loom::topo::XmlNode> tree = loom::topo::makeRailCluster(o.cluster);
  if (!tree.isOk()) return fail(tree.status());
  if (!o.dump.empty() && !writeText(o.dump, loom::topo::writeXml(*tree)))
    return fail(loom::systemError("cannot write " + o.dump));
  if (o.dump == "-") return 0;
  if (!o.dump.empty() && !o.json) {
    std::printf("cluster of %d host(s) written to %s\n", o.cluster, o.dump.c_str());
    return 0;
  }
  if (o.json) return std::fputs(loom::topo::writeJson(*tree).c_str(), stdout), 0;
  loom::Result<loom::topo::Cluster> c = loom::topo::Cluster::fromXml(*tree);
  if (!c.isOk()) return fail(c.status());
  const loom::topo::System& h0 = c->host(0);
  std::printf(
      "Cluster of %d DGX-H100-like host(s) (%d GPUs, %d NICs each), rail-optimised fat tree, "
      "%d host(s) per leaf\n",
      c->nhosts(), h0.count(loom::topo::NodeType::kGpu), h0.count(loom::topo::NodeType::kNic),
      c->hostsPerLeaf());
  const int g0 = h0.nodesOf(loom::topo::NodeType::kGpu).front();
  for (int h = 0; h < c->nhosts() && h < 4; ++h) {
    const loom::topo::Path p =
        c->path({0, g0}, {h, c->host(h).nodesOf(loom::topo::NodeType::kGpu)[0]});
    std::printf("  GPU0@host0 -> GPU0@host%d: %s, %.1f GB/s, %.2f us\n", h,
                loom::topo::pathTypeName(p.type), p.bandwidthGBs, p.latencyUs);
  }
  return 0;
}

loom::Result<loom::topo::Discovery> readTopology(const Options& o) {
  if (!o.load.empty()) {
    LOOM_ASSIGN_OR_RETURN(loom::topo::XmlNode tree, loom::topo::loadXmlFile(o.load));
    return loom::topo::Discovery{std::move(tree), {"loaded from " + o.load}};
  }
  if (!o.synthetic.empty()) {
    LOOM_ASSIGN_OR_RETURN(loom::topo::XmlNode tree,
                          loom::topo::makeSynthetic(o.synthetic, o.synthetic));
    return loom::topo::Discovery{std::move(tree), {"synthetic machine " + o.synthetic}};
  }
  loom::topo::DiscoverOptions d;
  if (!o.root.empty()) {
    d.fsRoot = o.root;
    d.nvmlLibrary = "";
  }
  return loom::topo::discoverHost(d);
}

int showHost(const Options& o) {
  loom::Result<loom::topo::Discovery> d = readTopology(o);
  if (!d.isOk()) return fail(d.status());
  loom::Result<loom::topo::System> sys = loom::topo::System::fromXml(d->system);
  if (!sys.isOk()) return fail(sys.status());
  if (!o.dump.empty() && !writeText(o.dump, loom::topo::writeXml(sys->xml())))
    return fail(loom::systemError("cannot write " + o.dump));
  if (o.dump == "-") return 0;
  if (!o.dump.empty() && !o.json && !o.tree && !o.matrix) {
    std::printf("topology of %s written to %s\n", sys->hostName().c_str(), o.dump.c_str());
    return 0;
  }
  if (o.json) return std::fputs(loom::topo::writeJson(sys->xml()).c_str(), stdout), 0;
  const bool all = !o.tree && !o.matrix;
  if (all) {
    std::printf("Topology of %s (loom-topo, hwloc %s)\n", sys->hostName().c_str(),
                LOOM_HAVE_HWLOC ? "built in" : "not built in");
    for (const std::string& note : d->notes)
      std::printf("  %s\n", note.c_str());
    std::printf("\n%s\n", loom::tools::renderSummary(*sys).c_str());
  }
  if (all || o.tree) std::printf("%s", loom::tools::renderTree(*sys).c_str());
  if (all) std::printf("\n");
  if (all || o.matrix) std::printf("%s", loom::tools::renderMatrix(*sys).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  setlinebuf(stdout);
  Options o;
  if (int r = parseArgs(argc, argv, &o); r != 0) return r == 1 ? 0 : 2;
  if (o.ranks) return loom::tools::showRanks(o.np, o.threads, o.json, argc, argv);
  if (o.cluster > 0) return showCluster(o);
  return showHost(o);
}
