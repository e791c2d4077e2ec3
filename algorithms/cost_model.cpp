#include "algorithms/cost_model.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <utility>

#include "algorithms/planner.h"

namespace loom::algo {
namespace {

// The pipelining unit the formulas assume for pipelined algorithms (the runtime's default).
constexpr double kSliceBytes = 128 * 1024;
// A hierarchical algorithm on a flat layout (one host, or one rank per host) only duplicates a
// flat algorithm; it is priced at this multiple of its formula, plus 1 ms, so a flat one wins.
constexpr double kFlatLayoutFactor = 10;

struct Terms {
  double n;         // ranks
  double log2n;     // ceil(log2 n)
  double pow2;      // largest power of two <= n
  double log2pow2;  // log2(pow2)
  bool fold;        // n is not a power of two
  double a;         // per message: latency + step overhead (+ wake-up)
  double b;         // per byte on the link
  double g;         // per byte reduced
  double copy;      // per byte copied locally
  double post;      // per extra message posted together with others (no wait between them)
  double children;  // children of an interior node of a binary tree (1 when n = 2)
  // Hierarchical algorithms: hosts and ranks per host (from CollectiveArgs::hosts; one host
  // when it is empty), and the intra-host (i) and inter-host (e) link of each message.
  double hosts = 1;
  double perHost = 1;
  double ai = 0, bi = 0;  // intra: per message, per byte
  double ae = 0, be = 0;  // inter: per message, per byte
};

using Formula = std::function<double(const Terms&, double bytes)>;

const std::map<std::pair<Collective, std::string_view>, Formula>& formulas() {
  static const auto* table = new std::map<std::pair<Collective, std::string_view>, Formula>{
      // AllReduce: bytes = the vector.
      {{Collective::kAllReduce, "ring"},
       [](const Terms& t, double N) {
         return 2 * (t.n - 1) * t.a + 2 * (t.n - 1) / t.n * N * t.b + (t.n - 1) / t.n * N * t.g;
       }},
      {{Collective::kAllReduce, "recursive_doubling"},
       [](const Terms& t, double N) {
         const double fold = t.fold ? 2 * (t.a + N * t.b) + N * t.g : 0;
         return t.log2pow2 * (t.a + N * t.b + N * t.g) + fold;
       }},
      {{Collective::kAllReduce, "rabenseifner"},
       [](const Terms& t, double N) {
         const double fold = t.fold ? 2 * (t.a + N * t.b) + N * t.g : 0;
         const double share = (t.pow2 - 1) / t.pow2 * N;
         return 2 * t.log2pow2 * t.a + 2 * share * t.b + share * t.g + fold;
       }},
      {{Collective::kAllReduce, "double_binary_tree"},
       [](const Terms& t, double N) {
         // An interior node receives a slice from each child (reduce) and sends one to each
         // child (broadcast) per step: `children` messages, each waited for.
         const double s = std::min(N / 2, kSliceBytes);
         return 2 * t.log2n * t.children * (t.a + s * t.b) + 2 * N * t.b + N * t.g;
       }},
      // Direct (allreduce_one_shot.cpp, allreduce_two_shot.cpp). As messages, every exchange
      // posts its n-1 sends and receives at once (no step waits for another), like pairwise
      // AllToAll; through the host window they are priced by windowUs below instead.
      {{Collective::kAllReduce, "one_shot"},
       [](const Terms& t, double N) {
         return t.a + (t.n - 2) * t.post + (t.n - 1) * N * (t.b + t.g);
       }},
      {{Collective::kAllReduce, "two_shot"},
       [](const Terms& t, double N) {
         return 2 * (t.a + (t.n - 2) * t.post) + 2 * (t.n - 1) / t.n * N * t.b +
                (t.n - 1) / t.n * N * t.g;
       }},
      // Broadcast: bytes = the vector.
      {{Collective::kBroadcast, "binomial"},
       [](const Terms& t, double N) { return t.log2n * (t.a + N * t.b); }},
      {{Collective::kBroadcast, "chain"},
       [](const Terms& t, double N) {
         const double s = std::min(N, kSliceBytes);
         const double k = std::ceil(N / s);
         return (t.n - 2 + k) * (t.a + s * t.b);
       }},
      {{Collective::kBroadcast, "scatter_allgather"},
       [](const Terms& t, double N) {
         return (t.log2n + t.n - 1) * t.a + 2 * (t.n - 1) / t.n * N * t.b;
       }},
      {{Collective::kBroadcast, "double_binary_tree"},
       [](const Terms& t, double N) {
         // Two trees, half the vector each. Per stage the root sends a slice to each tree's
         // top and an inner node one to each of its two children: two messages, each paying
         // its latency (also for n = 2, where both halves go to the one other rank).
         const double s = std::min(N / 2, kSliceBytes);
         const double k = std::ceil(N / 2 / s);
         return (t.log2n + k - 1) * 2 * (t.a + s * t.b);
       }},
      // Reduce: bytes = the vector.
      {{Collective::kReduce, "binomial"},
       [](const Terms& t, double N) { return t.log2n * (t.a + N * t.b + N * t.g); }},
      // AllGather: bytes = the whole output (n blocks). Out of place, the own block is copied
      // into the output (N/n · copy) by every algorithm.
      {{Collective::kAllGather, "ring"},
       [](const Terms& t, double N) {
         return (t.n - 1) * (t.a + N / t.n * t.b) + N / t.n * t.copy;
       }},
      {{Collective::kAllGather, "bruck"},
       [](const Terms& t, double N) {
         return t.log2n * t.a + (t.n - 1) / t.n * N * t.b + N / t.n * t.copy;
       }},
      {{Collective::kAllGather, "recursive_doubling"},
       [](const Terms& t, double N) {
         const double fold = t.fold ? 2 * t.a + N * t.b : 0;
         return t.log2pow2 * t.a + (t.pow2 - 1) / t.pow2 * N * t.b + fold + N / t.n * t.copy;
       }},
      // ReduceScatter: bytes = the whole input (n blocks).
      {{Collective::kReduceScatter, "ring"},
       [](const Terms& t, double N) { return (t.n - 1) * (t.a + N / t.n * (t.b + t.g)); }},
      {{Collective::kReduceScatter, "recursive_halving"},
       [](const Terms& t, double N) {
         const double fold = t.fold ? 2 * t.a + N * (t.b + t.g) + N / t.n * t.b : 0;
         const double sent = t.fold ? (t.n - 1) / t.n * N : (t.pow2 - 1) / t.pow2 * N;
         return t.log2pow2 * t.a + sent * (t.b + t.g) + fold;
       }},
      // AllToAll: bytes = one rank's whole input (n blocks).
      {{Collective::kAllToAll, "pairwise"},
       [](const Terms& t, double N) {
         // Out of place, no step depends on another: the executor posts all n-1 sends and
         // receives at once, so one message's latency (and wake-up) is paid and the others
         // add their posting overhead. (In place runs in floor(n/2) dependent pairs; the
         // choice must not depend on in-place-ness, which may differ between ranks, so the
         // formula prices the out-of-place schedule.)
         return t.a + (t.n - 2) * t.post + (t.n - 1) / t.n * N * t.b;
       }},
      {{Collective::kAllToAll, "bruck"},
       [](const Terms& t, double N) {
         // B(n) = sum over i < n of popcount(i): the blocks Bruck moves in all its rounds.
         double blocks = 0;
         for (int i = 1; i < static_cast<int>(t.n); ++i)
           blocks += std::popcount(unsigned(i));
         return t.log2n * t.a + blocks / t.n * N * t.b + (blocks + t.n) / t.n * N * t.copy;
       }},
      // One shot (allgather_one_shot.cpp and the others): every message is posted at once,
      // like pairwise AllToAll; through the host window they are priced by windowUs instead.
      {{Collective::kAllToAll, "one_shot"},
       [](const Terms& t, double N) {
         return t.a + (t.n - 2) * t.post + (t.n - 1) / t.n * N * t.b;
       }},
      {{Collective::kAllGather, "one_shot"},
       [](const Terms& t, double N) {
         return t.a + (t.n - 2) * t.post + (t.n - 1) / t.n * N * t.b + N / t.n * t.copy;
       }},
      {{Collective::kReduceScatter, "one_shot"},
       [](const Terms& t, double N) {
         return t.a + (t.n - 2) * t.post + (t.n - 1) / t.n * N * (t.b + t.g);
       }},
      {{Collective::kBroadcast, "one_shot"},
       [](const Terms& t, double N) { return t.a + (t.n - 2) * t.post + (t.n - 1) * N * t.b; }},
      {{Collective::kReduce, "one_shot"},
       [](const Terms& t, double N) {
         return t.a + (t.n - 2) * t.post + (t.n - 1) * N * (t.b + t.g);
       }},
      // Gather / Scatter: bytes = the root's whole buffer.
      {{Collective::kGather, "linear"},
       [](const Terms& t, double N) { return (t.n - 1) * t.a + (t.n - 1) / t.n * N * t.b; }},
      {{Collective::kScatter, "linear"},
       [](const Terms& t, double N) { return (t.n - 1) * t.a + (t.n - 1) / t.n * N * t.b; }},
      // Hierarchical (H hosts, L ranks per host): intra-host messages are priced at the intra
      // link and inter-host ones at the inter link; like the flat formulas, each rank's link is
      // priced on its own (no contention for a host's network). See docs/ALGORITHMS.md.
      {{Collective::kAllReduce, "hierarchical"},
       [](const Terms& t, double N) {
         const double H = t.hosts, L = t.perHost;
         const double intra = 2 * (L - 1) * (t.ai + N / L * t.bi) + (L - 1) / L * N * t.g;
         const double inter = 2 * (H - 1) * t.ae + (H - 1) / H * N / L * (2 * t.be + t.g);
         return intra + inter;
       }},
      {{Collective::kAllGather, "hierarchical"},
       [](const Terms& t, double N) {
         const double H = t.hosts, L = t.perHost, B = N / (H * L);
         return (H - 1) * (t.ae + B * t.be) + (L - 1) * H * (t.ai + B * t.bi) + B * t.copy;
       }},
      {{Collective::kReduceScatter, "hierarchical"},
       [](const Terms& t, double N) {
         const double H = t.hosts, L = t.perHost, B = N / (H * L);
         return (L - 1) * H * (t.ai + B * (t.bi + t.g)) + (H - 1) * (t.ae + B * (t.be + t.g));
       }},
      {{Collective::kBroadcast, "hierarchical"},
       [](const Terms& t, double N) {
         // Pipelined: the root is the busiest rank (it scatters N (L-1)/L, sends its own
         // slices to the L-1 others and its share across); the chain's fill adds H-1 hops.
         const double H = t.hosts, L = t.perHost;
         const double s = std::min(N / L, kSliceBytes);
         return 2 * (L - 1) * t.ai + (H - 1) * (t.ae + s * t.be) + 2 * (L - 1) / L * N * t.bi +
                (H > 1 ? N / L * t.be : 0);
       }},
      {{Collective::kReduce, "hierarchical"},
       [](const Terms& t, double N) {
         // Reduce-scatter in the host, a pipelined chain across hosts, a gather to the root.
         const double H = t.hosts, L = t.perHost;
         const double s = std::min(N / L, kSliceBytes);
         const double chain =
             H > 1 ? (H - 1) * (t.ae + s * (t.be + t.g)) + N / L * (t.be + t.g) : 0;
         return (L - 1) * (2 * t.ai + N / L * (2 * t.bi + t.g)) + chain;
       }},
      {{Collective::kBarrier, "dissemination"},
       [](const Terms& t, double) { return t.log2n * t.a; }},
      {{Collective::kSend, "direct"}, [](const Terms& t, double N) { return t.a + N * t.b; }},
      {{Collective::kRecv, "direct"}, [](const Terms& t, double N) { return t.a + N * t.b; }},
  };
  return *table;
}

// The one-shot collectives through the host window (runtime/direct.h), in rounds of at most
// args.windowBytes staged per rank, one flag hand-off per round; each pays the staging copy
// and what it reads from the staged inputs. AllReduce: a staging copy of the vector; per round one
// flag hand-off (one_shot: the inputs are staged) or two (two_shot: staged, then each chunk
// finished); one_shot reads and combines the n-1 peer copies of the whole vector, two_shot those of
// its chunk and then copies the n-1 finished chunks. A flag hand-off pays a wake-up when ranks
// outnumber CPUs.
double windowUs(const Algorithm& algorithm, const CollectiveArgs& args, uint64_t bytes,
                const CostModel& model, const Topology& topology) {
  const double n = std::max(1, args.nranks);
  const double N = static_cast<double>(bytes);
  const double W = static_cast<double>(args.windowBytes);
  const double sync = model.windowUs + (topology.oversubscribed ? model.wakeUs : 0);
  const double copy = 1e-3 / model.copyGbps;
  const double g = 1e-3 / model.reduceGbps;
  switch (algorithm.collective()) {
    case Collective::kAllGather:  // N = the output: stage the own block, copy n blocks
      return model.stepUs + std::ceil(N / n / W) * sync + N / n * copy + N * copy;
    case Collective::kReduceScatter:  // N = the input: stage it, combine block r of n inputs
      return model.stepUs + std::ceil(N / W) * sync + N * copy + N * (copy + g);
    case Collective::kAllToAll:  // N = the input: stage it, copy block r of n inputs
      // Every rank needs every other's input, as in AllGather; pairwise as messages waits for
      // every peer too. (Priced with a wake-up per other rank, the window lost every small AllToAll
      // on 4 processes of 2 CPUs that it ran 1.1-1.3x faster than pairwise, in three sweeps.)
      return model.stepUs + std::ceil(N / W) * sync + 2 * N * copy;
    // Broadcast and Reduce: a rank waits only for those it reads (the root, or the root for
    // the others), and may run kWindowSlots - 1 rounds ahead of those that read it, as eager
    // sends do. (With two buffers every rank waited for every other each round, priced with a
    // wake-up per other rank when oversubscribed; four made the window's small Broadcast on 4
    // processes of 2 CPUs faster than binomial, 1.8-2.2 us against 3.3.)
    case Collective::kBroadcast:  // the root stages the vector, the others copy it
      return model.stepUs + std::ceil(N / W) * sync + 2 * N * copy;
    case Collective::kReduce: {  // every rank stages, the root combines n vectors
      // The root reads a piece while the others stage the next ones into other buffers, so
      // only the first piece's staging is exposed; it is priced at the link's rate, because
      // the root waits for it from other cores (as messages the binomial's sends and the
      // combining overlap slice by slice in the same way).
      const double link = model.intra.usPerByte();
      return model.stepUs + std::ceil(N / W) * sync + std::min(N, W) * link +
             (n - 1) * N * (copy + g);
    }
    default:
      break;
  }
  const double rounds = std::ceil(N / W);
  if (algorithm.name() == "one_shot")
    return model.stepUs + rounds * sync + N * copy + (n - 1) * N * (copy + g);
  return model.stepUs + rounds * 2 * sync + N * copy + (n - 1) / n * N * (copy + g) +
         (n - 1) / n * N * copy;
}

// "64K", "1M", "4096" or "inf" (LOOM_ALGO's size syntax).
std::string sizeText(uint64_t bytes) {
  if (bytes == kNoUpperBound) return "inf";
  const std::pair<uint64_t, const char*> units[] = {
      {1ull << 30, "G"}, {1ull << 20, "M"}, {1ull << 10, "K"}};
  for (const auto& [unit, suffix] : units)
    if (bytes >= unit && bytes % unit == 0) return std::to_string(bytes / unit) + suffix;
  return std::to_string(bytes);
}

// A measured.np<N> line's value (LOOM_ALGO syntax) as ranges for N ranks.
Status parseMeasured(std::string_view key, std::string_view value, CostModel* m) {
  const std::string_view digits = key.substr(std::string_view("measured.np").size());
  int n = 0;
  for (const char ch : digits) {
    if (ch < '0' || ch > '9' || n > (1 << 24))
      return invalidArgument("bad rank count in '" + std::string(key) + "'");
    n = n * 10 + (ch - '0');
  }
  if (digits.empty() || n < 2)
    return invalidArgument("'" + std::string(key) + "' needs a rank count >= 2 (measured.np4)");
  for (const MeasuredRange& r : m->measured)
    if (r.nranks == n) return invalidArgument("'" + std::string(key) + "' is given twice");
  LOOM_ASSIGN_OR_RETURN(const AlgoOverrides overrides, parseAlgoOverrides(value));
  if (overrides.empty()) return invalidArgument("'" + std::string(key) + "' has no algorithm");
  for (int c = 0; c < kNumCollectives; ++c)
    for (const AlgoChoice& choice : overrides.byCollective[static_cast<size_t>(c)])
      m->measured.push_back(MeasuredRange{n, static_cast<Collective>(c), choice});
  return Status::ok();
}

bool parseDouble(std::string_view text, double* out) {
  const std::string s(text);
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v) || v < 0) return false;
  *out = v;
  return true;
}

}  // namespace

Result<CostModel> CostModel::parse(std::string_view text) {
  CostModel m;
  const std::pair<const char*, double*> keys[] = {
      {"intra.alpha_us", &m.intra.alphaUs},
      {"intra.gbps", &m.intra.gbps},
      {"inter.alpha_us", &m.inter.alphaUs},
      {"inter.gbps", &m.inter.gbps},
      {"reduce.gbps", &m.reduceGbps},
      {"step.us", &m.stepUs},
      {"wake.us", &m.wakeUs},
      {"window.us", &m.windowUs},
      {"copy.gbps", &m.copyGbps},
  };
  int lineNo = 0;
  while (!text.empty()) {
    const size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    ++lineNo;
    if (const size_t hash = line.find('#'); hash != std::string_view::npos)
      line = line.substr(0, hash);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t'))
      line.remove_prefix(1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r'))
      line.remove_suffix(1);
    if (line.empty()) continue;
    const size_t space = line.find_first_of(" \t");
    const std::string_view key = line.substr(0, space);
    std::string_view value = space == std::string_view::npos ? "" : line.substr(space + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    double* slot = nullptr;
    for (const auto& [name, field] : keys)
      if (key == name) slot = field;
    const std::string where = "tuning profile line " + std::to_string(lineNo) + ": ";
    if (key.starts_with("measured.np")) {
      if (Status s = parseMeasured(key, value, &m); !s.isOk())
        return invalidArgument(where + s.message());
      continue;
    }
    if (slot == nullptr) {
      std::string known;
      for (const auto& k : keys)
        known += (known.empty() ? "" : ", ") + std::string(k.first);
      return invalidArgument(where + "unknown key '" + std::string(key) + "' (known: " + known +
                             ", measured.np<N>)");
    }
    if (!parseDouble(value, slot))
      return invalidArgument(where + "'" + std::string(value) + "' is not a number >= 0");
  }
  if (m.intra.gbps <= 0 || m.inter.gbps <= 0 || m.reduceGbps <= 0 || m.copyGbps <= 0)
    return invalidArgument("tuning profile: bandwidths must be > 0");
  std::stable_sort(
      m.measured.begin(), m.measured.end(),
      [](const MeasuredRange& a, const MeasuredRange& b) { return a.nranks < b.nranks; });
  return m;
}

std::string CostModel::format() const {
  char buf[640];
  std::snprintf(buf, sizeof buf,
                "intra.alpha_us %.17g\nintra.gbps %.17g\ninter.alpha_us %.17g\ninter.gbps "
                "%.17g\nreduce.gbps %.17g\nstep.us %.17g\nwake.us %.17g\nwindow.us "
                "%.17g\ncopy.gbps %.17g\n",
                intra.alphaUs, intra.gbps, inter.alphaUs, inter.gbps, reduceGbps, stepUs, wakeUs,
                windowUs, copyGbps);
  std::string text = buf;
  for (size_t i = 0; i < measured.size(); ++i) {
    const MeasuredRange& r = measured[i];
    const bool newLine = i == 0 || measured[i - 1].nranks != r.nranks;
    const bool newCollective = newLine || measured[i - 1].collective != r.collective;
    if (newLine)
      text += (i == 0 ? "" : "\n") + std::string("measured.np") + std::to_string(r.nranks) + " ";
    if (newCollective)
      text += std::string(newLine ? "" : ";") + collectiveName(r.collective) + ":";
    else
      text += ",";
    text += sizeText(r.choice.minBytes) + "-" + sizeText(r.choice.maxBytes) + "@" +
            std::string(r.choice.algorithm->name());
  }
  if (!measured.empty()) text += "\n";
  return text;
}

const Algorithm* measuredAlgorithm(const CostModel& model, const CollectiveArgs& args,
                                   uint64_t bytes, const Topology& topology) {
  if (model.measured.empty() || topology.nhosts > 1 || args.windowBytes == 0) return nullptr;
  for (const MeasuredRange& r : model.measured)
    if (r.nranks == args.nranks && r.collective == args.collective && r.choice.holds(bytes))
      return r.choice.algorithm;
  return nullptr;
}

double predictUs(const Algorithm& algorithm, const CollectiveArgs& args, uint64_t bytes,
                 const CostModel& model, const Topology& topology) {
  const auto& table = formulas();
  const auto it = table.find({algorithm.collective(), algorithm.name()});
  if (it == table.end()) return -1;
  const int n = std::max(1, args.nranks);
  if (n == 1) return model.stepUs;  // nothing moves
  Terms t;
  t.n = n;
  t.log2n = std::ceil(std::log2(static_cast<double>(n)));
  int pow2 = 1;
  while (pow2 * 2 <= n)
    pow2 *= 2;
  t.pow2 = pow2;
  t.log2pow2 = std::log2(static_cast<double>(pow2));
  t.fold = pow2 != n;
  const LinkCost& link = topology.nhosts > 1 ? model.inter : model.intra;
  t.a = link.alphaUs + model.stepUs + (topology.oversubscribed ? model.wakeUs : 0);
  t.b = link.usPerByte();
  t.g = 1e-3 / model.reduceGbps;
  t.copy = model.intra.usPerByte();
  t.post = link.alphaUs + model.stepUs;
  t.children = n > 2 ? 2 : 1;
  const bool layout = !args.hosts.empty() && args.hosts.nranks() == n;
  t.hosts = layout ? args.hosts.nhosts() : 1;
  t.perHost = layout ? args.hosts.maxRanksPerHost() : n;
  const double wake = topology.oversubscribed ? model.wakeUs : 0;
  t.ai = model.intra.alphaUs + model.stepUs + wake;
  t.bi = model.intra.usPerByte();
  t.ae = model.inter.alphaUs + model.stepUs + wake;
  t.be = model.inter.usPerByte();
  if (runsInWindow(algorithm, args)) return windowUs(algorithm, args, bytes, model, topology);
  const double us = it->second(t, static_cast<double>(bytes));
  // On one host, or with one rank per host, a hierarchical schedule is a flat algorithm under
  // another name; the planner keeps to the flat ones there (LOOM_ALGO can still force it).
  const bool flat = t.hosts <= 1 || t.perHost <= 1;
  if (algorithm.name() == "hierarchical" && flat) return kFlatLayoutFactor * us + 1000;
  return us;
}

}  // namespace loom::algo
