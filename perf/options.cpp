#include "options.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace loom::perf {
namespace {

constexpr char kUsage[] =
    "usage: loom-perf COLLECTIVE[,COLLECTIVE...] [options]\n"
    "       loom-perf --plot OUT.svg RESULT.json...\n"
    "\n"
    "Collectives: all_reduce all_gather reduce_scatter broadcast reduce alltoall gather\n"
    "scatter sendrecv, or 'all'. Prints nccl-tests' table; exits non-zero on any wrong value.\n"
    "Runs under loomrun, mpirun, srun or torchrun (one rank per process), or alone.\n"
    "\n"
    "nccl-tests flags (sizes take K, M, G suffixes, powers of 1024):\n"
    "  -b, --minbytes SIZE      smallest size (default 32M)\n"
    "  -e, --maxbytes SIZE      largest size (default 32M)\n"
    "  -i, --stepbytes SIZE     size increment (default 1M)\n"
    "  -f, --stepfactor N       size multiplier (default 1: use -i)\n"
    "  -n, --iters N            timed iterations per size (default 20)\n"
    "  -w, --warmup_iters N     warm-up iterations (default 5)\n"
    "  -m, --agg_iters N        calls per iteration, issued as one group (default 1)\n"
    "  -N, --run_cycles N       repeat the sweep N times, 0 = forever (default 1)\n"
    "  -c, --check N            checked calls per row, 0 = no check (default 1)\n"
    "  -o, --op OP              sum prod max min avg mulsum, or all (default sum)\n"
    "  -d, --datatype TYPE      int8 uint8 int32 uint32 int64 uint64 half float double\n"
    "                           bfloat16 f8e4m3 f8e5m2, or all (default float)\n"
    "  -r, --root N             root of rooted collectives, -1 = every root (default 0)\n"
    "  -z, --blocking 0/1       barrier after every call (default 0)\n"
    "  -a, --average 0/1/2/3    time over ranks: rank 0, mean, min, max (default 1)\n"
    "  -t, --nthreads N         ranks as threads in each process (default 1)\n"
    "  -g, --ngpus N            GPUs per rank: must be 1 (see --device)\n"
    "  -T, --timeout SECONDS    loom's deadline for every wait (default LOOM_TIMEOUT_MS)\n"
    "  -C, --report_cputime 0/1 label the time column 'cputime'\n"
    "  -G, -p, -y, -R           accepted and ignored (CUDA graphs, parallel init, NULL\n"
    "                           stream, registration have no meaning for host memory)\n"
    "loom extras:\n"
    "  -np N                    start N local ranks of loom-perf itself (like loomrun)\n"
    "  --algo NAME              force an algorithm (LOOM_ALGO=<collective>:NAME), or give\n"
    "                           a full LOOM_ALGO value containing ':'\n"
    "  --transport NAME         auto, loopback, shm or socket\n"
    "  --device host|cuda       where the buffers live (default host); cuda: device memory\n"
    "                           on GPU (rank mod #GPUs), calls ordered on a CUDA stream\n"
    "  --json FILE              write every row to FILE (rank 0)\n"
    "  --peer-format LABEL      print the peers' raw format (shared/peers/summarize.py)\n"
    "                           instead of the table: out-of-place rows (broadcast in\n"
    "                           place, as MPI_Bcast), time = max over ranks, iterations\n"
    "                           adapted as the peers do (--budget 1)\n"
    "  --budget SECONDS         adapt iterations per size to about this much timed work\n"
    "  --slow-limit SECONDS     with --budget: a call slower than this ends the sweep (2)\n"
    "  --plot OUT.svg FILES...  draw busbw against size for result files (--json output),\n"
    "                           one line per series, and run nothing\n"
    "  --calibrate FILE         measure this machine's transports (shm, socket), reduction,\n"
    "                           step and wake-up costs and write the planner's cost-model\n"
    "                           profile to FILE ('-': stdout); load it with LOOM_TUNING_FILE\n"
    "    --tune N[,N...]        with --calibrate: also time every algorithm of the six\n"
    "                           collectives on N processes of this host and write the\n"
    "                           fastest per size (measured.npN; the planner then follows it)\n"
    "    --tune-max SIZE        the largest size --tune times (16M)\n"
    "    --tune-runs N          interleaved runs per size; the median is compared (3)\n"
    "  --test-corrupt RANK      TEST ONLY: corrupt one output element on RANK before the\n"
    "                           check, so #wrong and the exit status can be tested\n"
    "  -h, --help               this text\n";

// nccl-tests' parsesize: a number with an optional K/M/G suffix (powers of 1024).
bool parseSize(std::string_view text, size_t* out) {
  const std::string s(text);
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || v < 0) return false;
  double unit = 1;
  std::string_view rest(end);
  if (!rest.empty()) {
    switch (rest[0]) {
      case 'k':
      case 'K':
        unit = 1024.0;
        break;
      case 'm':
      case 'M':
        unit = 1024.0 * 1024;
        break;
      case 'g':
      case 'G':
        unit = 1024.0 * 1024 * 1024;
        break;
      default:
        return false;
    }
    rest.remove_prefix(1);
    if (!(rest.empty() || rest == "B" || rest == "iB" || rest == "b")) return false;
  }
  *out = static_cast<size_t>(std::llround(v * unit));
  return true;
}

bool parseInt(std::string_view text, long lo, long hi, int* out) {
  const std::string s(text);
  char* end = nullptr;
  const long v = std::strtol(s.c_str(), &end, 0);
  if (end == s.c_str() || *end != '\0' || v < lo || v > hi) return false;
  *out = static_cast<int>(v);
  return true;
}

bool parseDouble(std::string_view text, double* out) {
  const std::string s(text);
  char* end = nullptr;
  *out = std::strtod(s.c_str(), &end);
  return end != s.c_str() && *end == '\0' && *out >= 0;
}

bool parseCollectives(std::string_view text, std::vector<CollKind>* out) {
  out->clear();
  if (text == "all") {
    for (const CollInfo& info : allCollectives())
      out->push_back(info.kind);
    return true;
  }
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const auto kind = parseCollective(text.substr(0, comma));
    if (!kind) return false;
    out->push_back(*kind);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return !out->empty();
}

// Maps a long option to its short letter ('\0' when unknown).
char shortFor(std::string_view name) {
  static const std::pair<const char*, char> kLong[] = {{"nthreads", 't'},
                                                       {"ngpus", 'g'},
                                                       {"minbytes", 'b'},
                                                       {"maxbytes", 'e'},
                                                       {"stepbytes", 'i'},
                                                       {"stepfactor", 'f'},
                                                       {"iters", 'n'},
                                                       {"agg_iters", 'm'},
                                                       {"warmup_iters", 'w'},
                                                       {"run_cycles", 'N'},
                                                       {"parallel_init", 'p'},
                                                       {"check", 'c'},
                                                       {"op", 'o'},
                                                       {"datatype", 'd'},
                                                       {"root", 'r'},
                                                       {"blocking", 'z'},
                                                       {"stream_null", 'y'},
                                                       {"timeout", 'T'},
                                                       {"cudagraph", 'G'},
                                                       {"report_cputime", 'C'},
                                                       {"average", 'a'},
                                                       {"local_register", 'R'}};
  for (const auto& [longName, letter] : kLong)
    if (name == longName) return letter;
  return '\0';
}

// Applies one nccl-tests flag. Returns false with *error set on a bad value.
bool applyShort(char flag, std::string_view value, Options* o, std::string* error) {
  bool ok = true;
  int ignored = 0;
  switch (flag) {
    case 't':
      ok = parseInt(value, 1, 1024, &o->nThreads);
      break;
    case 'g':
      ok = parseInt(value, 1, 1, &o->nGpus);
      break;
    case 'b':
      ok = parseSize(value, &o->minBytes);
      break;
    case 'e':
      ok = parseSize(value, &o->maxBytes);
      break;
    case 'i':
      ok = parseSize(value, &o->stepBytes);
      break;
    case 'f': {
      int f = 1;
      ok = parseInt(value, 1, 1 << 20, &f);
      o->stepFactor = static_cast<size_t>(f);
      break;
    }
    case 'n':
      ok = parseInt(value, 1, 1 << 30, &o->iters);
      break;
    case 'm':
      ok = parseInt(value, 1, 1 << 20, &o->aggIters);
      break;
    case 'w':
      ok = parseInt(value, 0, 1 << 30, &o->warmupIters);
      break;
    case 'N':
      ok = parseInt(value, 0, 1 << 30, &o->runCycles);
      break;
    case 'c':
      ok = parseInt(value, 0, 1 << 20, &o->check);
      break;
    case 'r':
      if (value == "all")
        o->root = -1;
      else
        ok = parseInt(value, -1, 1 << 30, &o->root);
      break;
    case 'z':
      ok = parseInt(value, 0, 2, &o->blocking);
      break;
    case 'a':
      ok = parseInt(value, 0, 3, &o->average);
      break;
    case 'T':
      ok = parseInt(value, 0, 1 << 24, &o->timeoutSec);
      break;
    case 'C': {
      int c = 0;
      ok = parseInt(value, 0, 1, &c);
      o->reportCpuTime = c != 0;
      break;
    }
    case 'G':
    case 'p':
    case 'y':
    case 'R':
      ok = parseInt(value, 0, 1 << 30, &ignored);
      break;
    case 'o':
      if (value == "all") {
        o->ops.assign(allOps().begin(), allOps().end());
      } else if (auto op = parseOp(value)) {
        o->ops = {*op};
      } else {
        ok = false;
      }
      break;
    case 'd':
      if (value == "all") {
        o->types.assign(allTypes().begin(), allTypes().end());
      } else if (auto type = parseType(value)) {
        o->types = {*type};
      } else {
        ok = false;
      }
      break;
    default:
      *error = std::string("unknown option -") + flag;
      return false;
  }
  if (!ok) *error = "bad value '" + std::string(value) + "' for -" + flag;
  return ok;
}

// Applies one loom extra (--name). Returns 0 when `name` is not one, 1 when applied, -1 on a bad
// value. *consumed tells whether `value` was used.
int applyExtra(std::string_view name, std::string_view value, Options* o, std::string* error) {
  if (name == "np") {
    if (!parseInt(value, 1, 4096, &o->np)) return *error = "bad value for -np", -1;
  } else if (name == "algo") {
    o->algo = value;
  } else if (name == "transport") {
    if (value != "auto" && value != "loopback" && value != "shm" && value != "socket")
      return *error = "--transport: expected auto, loopback, shm or socket", -1;
    o->transport = value;
  } else if (name == "device") {
    if (value != "host" && value != "cuda") return *error = "--device: expected host or cuda", -1;
    o->device = value;
  } else if (name == "json") {
    o->jsonPath = value;
  } else if (name == "peer-format") {
    o->peerLabel = value;
  } else if (name == "budget") {
    if (!parseDouble(value, &o->budgetSec)) return *error = "bad value for --budget", -1;
  } else if (name == "slow-limit") {
    if (!parseDouble(value, &o->slowLimitSec)) return *error = "bad value for --slow-limit", -1;
  } else if (name == "test-corrupt") {
    if (!parseInt(value, 0, 1 << 20, &o->corruptRank))
      return *error = "bad value for --test-corrupt", -1;
  } else {
    return 0;
  }
  return 1;
}

std::string baseName(const char* path) {
  const char* slash = std::strrchr(path, '/');
  return slash ? slash + 1 : path;
}

}  // namespace

std::string usageText() {
  return kUsage;
}

ParseResult parseOptions(int argc, char** argv, Options* o, std::string* error) {
  for (int i = 0; i < argc; ++i)
    o->args.emplace_back(argv[i]);
  bool named = false;
  if (argc > 0) {
    const std::string self = baseName(argv[0]);
    if (self.ends_with("_perf") && parseCollectives(self, &o->collectives)) named = true;
  }
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") return ParseResult::kHelp;
    if (arg == "--plot") {
      if (i + 2 >= argc)
        return *error = "--plot needs OUT.svg and at least one input", ParseResult::kError;
      o->plotOutput = argv[++i];
      while (++i < argc)
        o->plotInputs.emplace_back(argv[i]);
      return ParseResult::kRun;
    }
    if (arg == "--calibrate" || arg.starts_with("--calibrate=")) {
      if (arg == "--calibrate" && i + 1 >= argc)
        return *error = "--calibrate needs an output file ('-' for stdout)", ParseResult::kError;
      o->calibrateOutput = arg == "--calibrate" ? argv[++i] : std::string(arg.substr(12));
      // Only --tune options may follow.
      while (++i < argc) {
        const std::string_view opt = argv[i];
        if (opt != "--tune" && opt != "--tune-max" && opt != "--tune-runs")
          return *error =
                     "--calibrate takes only --tune, --tune-max and --tune-runs after it, not '" +
                     std::string(opt) + "'",
                 ParseResult::kError;
        if (i + 1 >= argc) return *error = std::string(opt) + " needs a value", ParseResult::kError;
        const std::string value = argv[++i];
        if (opt == "--tune") {
          o->tuneRanks.clear();
          size_t start = 0;
          while (start <= value.size()) {
            const size_t comma = std::min(value.find(',', start), value.size());
            const std::string item = value.substr(start, comma - start);
            int n = 0;
            if (!parseInt(item, 2, 1024, &n))
              return *error = "--tune: '" + item + "' is not a rank count from 2 to 1024",
                     ParseResult::kError;
            o->tuneRanks.push_back(n);
            start = comma + 1;
          }
        } else if (opt == "--tune-max") {
          if (!parseSize(value, &o->tuneMaxBytes) || o->tuneMaxBytes < 8)
            return *error = "--tune-max: bad size '" + value + "'", ParseResult::kError;
        } else {
          if (!parseInt(value, 1, 99, &o->tuneRuns))
            return *error = "--tune-runs: '" + value + "' is not a count from 1 to 99",
                   ParseResult::kError;
        }
      }
      return ParseResult::kRun;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      if (named || !o->collectives.empty())
        return *error = "unexpected argument '" + std::string(arg) + "'", ParseResult::kError;
      if (!parseCollectives(arg, &o->collectives))
        return *error = "unknown collective '" + std::string(arg) + "'", ParseResult::kError;
      continue;
    }
    // Long form: --name value or --name=value; "-np" is a loom extra with one dash.
    std::string_view name, value;
    bool hasInlineValue = false;
    if (arg.starts_with("--") || arg == "-np") {
      name = arg.substr(arg[1] == '-' ? 2 : 1);
      const size_t eq = name.find('=');
      if (eq != std::string_view::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        hasInlineValue = true;
      }
    } else {
      name = arg.substr(1, 1);
      if (arg.size() > 2) {
        value = arg.substr(2);
        hasInlineValue = true;
      }
    }
    if (!hasInlineValue) {
      if (i + 1 >= argc) return *error = std::string(arg) + " needs a value", ParseResult::kError;
      value = argv[++i];
    }
    const int extra = name.size() > 1 ? applyExtra(name, value, o, error) : 0;
    if (extra < 0) return ParseResult::kError;
    if (extra > 0) continue;
    const char letter = name.size() == 1 ? name[0] : shortFor(name);
    if (letter == '\0') return *error = "unknown option " + std::string(arg), ParseResult::kError;
    if (!applyShort(letter, value, o, error)) return ParseResult::kError;
  }
  if (o->collectives.empty()) return *error = "no collective given", ParseResult::kError;
  if (o->minBytes > o->maxBytes)
    return *error = "invalid sizes for 'minbytes' and 'maxbytes': " + std::to_string(o->minBytes) +
                    " > " + std::to_string(o->maxBytes),
           ParseResult::kError;
  if (o->stepFactor <= 1 && o->stepBytes == 0)
    return *error = "-i 0 with -f 1 would never end", ParseResult::kError;
  return ParseResult::kRun;
}

std::vector<std::string> argsWithoutNp(int argc, char** argv) {
  std::vector<std::string> out;
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "-np" || arg == "--np") {
      ++i;  // and its value
      continue;
    }
    if (arg.starts_with("-np=") || arg.starts_with("--np=")) continue;
    out.emplace_back(arg);
  }
  return out;
}

std::vector<size_t> sweepSizes(const Options& o) {
  std::vector<size_t> sizes;
  for (size_t size = o.minBytes; size <= o.maxBytes;) {
    sizes.push_back(size);
    size_t next = o.stepFactor > 1 ? size * o.stepFactor : size + o.stepBytes;
    if (size == 0 && o.stepFactor > 1) next = 1;  // 0 * factor would never grow
    if (next <= size) break;                      // overflow
    size = next;
  }
  return sizes;
}

std::string algoOverride(const Options& o) {
  if (o.algo.empty()) return "";
  if (o.algo.find(':') != std::string::npos) return o.algo;
  std::string value;
  for (CollKind kind : o.collectives) {
    std::string_view keys = collInfo(kind).algoKey;
    while (!keys.empty()) {
      const size_t comma = keys.find(',');
      const std::string entry = std::string(keys.substr(0, comma)) + ":" + o.algo;
      if (value.find(entry) == std::string::npos) value += (value.empty() ? "" : ";") + entry;
      if (comma == std::string_view::npos) break;
      keys.remove_prefix(comma + 1);
    }
  }
  return value;
}

}  // namespace loom::perf
