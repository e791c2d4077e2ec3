// loomrun - start the ranks of a loom job on this host (like `torchrun --standalone` or
// `mpirun -np N`), with the rendezvous set up through the environment; loomCommInitEnv picks it
// up. The supervision rules (exit codes, grace period, signals, no orphans) are in
// tools/launch/launch.h.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "launch/launch.h"

namespace {

constexpr char kUsage[] =
    "usage: loomrun [options] [--] program [args...]\n"
    "\n"
    "Starts the ranks of a loom job on this host; each rank calls loomCommInitEnv.\n"
    "\n"
    "  -np N, -n N, --nproc-per-node N\n"
    "                        ranks on this host (default 1)\n"
    "  --nnodes H            hosts in the job (default 1); run one loomrun per host\n"
    "  --node-rank I         this host's index in [0, H); its ranks are I*N .. I*N+N-1\n"
    "  --master HOST:PORT    rendezvous root, required with --nnodes > 1; global rank 0\n"
    "                        listens there. Set LOOM_SECRET (32 hex digits) on every host.\n"
    "  --tag-output          prefix every output line with [rankN]:\n"
    "  --grace SECONDS       after a rank fails, how long the others may take to exit\n"
    "                        before SIGTERM (default 5)\n"
    "  --kill-after SECONDS  after SIGTERM, how long before SIGKILL (default 2)\n"
    "  --timeout SECONDS     stop the job after this long; exit status 124 (default none)\n"
    "  -x NAME=VALUE         set a variable for every rank (repeatable)\n"
    "  --standalone          accepted for torchrun compatibility (single host is the default)\n"
    "  -h, --help            this text\n"
    "\n"
    "Single host: loomrun runs the rendezvous root itself and passes LOOM_UNIQUE_ID,\n"
    "LOOM_RANK, LOOM_WORLD_SIZE, LOOM_LOCAL_RANK, LOOM_LOCAL_SIZE (and LOOM_SOCKET_IFNAME=lo\n"
    "unless set). Exit status: 0 when every rank exits 0, else the first failing rank's exit\n"
    "code (128+signal for a rank killed by a signal, or for loomrun interrupted by one).\n"
    "Ranks run in their own process groups; when the job ends, nothing it started is left.\n";

bool parseSeconds(const char* text, int64_t* ms) {
  char* end = nullptr;
  const double v = std::strtod(text, &end);
  if (end == text || *end != '\0' || v < 0 || v > 1e7) return false;
  *ms = static_cast<int64_t>(v * 1000.0 + 0.5);
  return true;
}

bool parseInt(const char* text, int* out) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || v < 0 || v > 1000000) return false;
  *out = static_cast<int>(v);
  return true;
}

int usageError(const std::string& what) {
  std::fprintf(stderr, "loomrun: %s\n\n%s", what.c_str(), kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  loom::launch::JobSpec spec;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg.empty() || arg[0] != '-') break;  // the program
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "--tag-output") {
      spec.tagOutput = true;
      continue;
    }
    if (arg == "--standalone") continue;
    if (i + 1 >= argc) return usageError(std::string(arg) + " needs a value");
    const char* value = argv[++i];
    bool ok = true;
    if (arg == "-np" || arg == "-n" || arg == "--np" || arg == "--nproc-per-node") {
      ok = parseInt(value, &spec.localRanks);
    } else if (arg == "--nnodes") {
      ok = parseInt(value, &spec.nnodes);
    } else if (arg == "--node-rank") {
      ok = parseInt(value, &spec.nodeRank);
    } else if (arg == "--master") {
      spec.master = value;
    } else if (arg == "--grace") {
      ok = parseSeconds(value, &spec.graceMs);
    } else if (arg == "--kill-after") {
      ok = parseSeconds(value, &spec.killAfterMs);
    } else if (arg == "--timeout") {
      ok = parseSeconds(value, &spec.timeoutMs);
    } else if (arg == "-x") {
      const char* eq = std::strchr(value, '=');
      if (eq == nullptr || eq == value) return usageError("-x expects NAME=VALUE");
      spec.extraEnv[std::string(value, static_cast<size_t>(eq - value))] = eq + 1;
    } else {
      return usageError("unknown option " + std::string(arg));
    }
    if (!ok) return usageError("bad value '" + std::string(value) + "' for " + std::string(arg));
  }
  for (; i < argc; ++i)
    spec.command.emplace_back(argv[i]);
  const std::string problem = loom::launch::validate(spec);
  if (!problem.empty()) return usageError(problem);
  return loom::launch::runJob(spec);
}
