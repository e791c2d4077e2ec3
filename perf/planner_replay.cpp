// loom-planner-replay: the algorithm the planner chooses for every (collective, ranks, size) of
// a planner sweep, for ranks that are processes of one host with the host window, from the
// built-in cost model or a tuning profile. perf/planner_replay.py replays sweeps with it: which
// choices would have been within 10% of the fastest forced algorithm, for a candidate profile,
// without running anything again. (An internal tool: it links the planner, not the public API.)
//
// usage: loom-planner-replay [--profile FILE] [--np 2,4] [--max 2M] [--cpus N] [--window BYTES]
// Output, one line per call: COLLECTIVE NP BYTES ALGORITHM PREDICTED_US, sizes 8 B * 4^k.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "algorithms/planner.h"
#include "base/host.h"

namespace {

using loom::algo::Collective;

bool parseList(const std::string& text, std::vector<int>* out) {
  out->clear();
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 1 || v > 1 << 20) return false;
    out->push_back(static_cast<int>(v));
  }
  return !out->empty();
}

bool parseBytes(const std::string& text, uint64_t* out) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  const std::string suffix = end;
  const uint64_t scale = suffix.empty()                   ? 1
                         : suffix == "K" || suffix == "k" ? 1ull << 10
                         : suffix == "M" || suffix == "m" ? 1ull << 20
                         : suffix == "G" || suffix == "g" ? 1ull << 30
                                                          : 0;
  if (end == text.c_str() || scale == 0) return false;
  *out = v * scale;
  return true;
}

int usage(const char* error) {
  if (error) std::fprintf(stderr, "loom-planner-replay: %s\n", error);
  std::fprintf(error ? stderr : stdout,
               "usage: loom-planner-replay [--profile FILE] [--np 2,4] [--max 2M] [--cpus N] "
               "[--window BYTES]\n");
  return error ? 2 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string profile;
  std::vector<int> nps = {2, 4};
  uint64_t maxBytes = 2 << 20, window = 262144;
  int cpus = loom::usableCpus();
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") return usage(nullptr);
    if (i + 1 >= argc) return usage(("missing value for " + a).c_str());
    const std::string v = argv[++i];
    std::vector<int> one;  // --cpus
    if (a == "--profile") {
      profile = v;
    } else if (a == "--np") {
      if (!parseList(v, &nps)) return usage("--np: a list of rank counts, e.g. 2,4");
    } else if (a == "--max") {
      if (!parseBytes(v, &maxBytes)) return usage("--max: a size, e.g. 2M");
    } else if (a == "--window") {
      if (!parseBytes(v, &window)) return usage("--window: a size in bytes");
    } else if (a == "--cpus") {
      if (!parseList(v, &one) || one.size() != 1) return usage("--cpus: a count");
      cpus = one[0];
    } else {
      return usage(("unknown option " + a).c_str());
    }
  }
  loom::algo::CostModel model;
  if (!profile.empty()) {
    std::ifstream in(profile);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) return usage(("cannot read " + profile).c_str());
    auto parsed = loom::algo::CostModel::parse(text.str());
    if (!parsed.isOk()) return usage(parsed.status().toString().c_str());
    model = *parsed;
  }
  const std::pair<const char*, Collective> collectives[] = {
      {"all_reduce", Collective::kAllReduce},
      {"all_gather", Collective::kAllGather},
      {"reduce_scatter", Collective::kReduceScatter},
      {"broadcast", Collective::kBroadcast},
      {"alltoall", Collective::kAllToAll},
      {"reduce", Collective::kReduce}};
  for (const int np : nps)
    for (const auto& [name, c] : collectives)
      for (uint64_t bytes = 8; bytes <= maxBytes; bytes *= 4) {
        // loom-perf's sizes: the whole buffer, rounded down to whole elements per rank.
        const bool perRank = c == Collective::kAllGather || c == Collective::kReduceScatter ||
                             c == Collective::kAllToAll;
        loom::algo::CollectiveArgs args;
        args.collective = c;
        args.nranks = np;
        args.count = perRank ? bytes / 4 / static_cast<uint64_t>(np) : bytes / 4;
        args.windowBytes = window;
        if (args.count == 0) continue;
        const loom::algo::Topology topology{1, np, np > cpus};
        loom::algo::Choice choice;
        auto chosen = loom::algo::chooseAlgorithm(args, 4, loom::algo::AlgoOverrides{}, model,
                                                  topology, &choice);
        if (!chosen.isOk()) continue;
        std::printf("%s %d %llu %s %.3f\n", name, np, static_cast<unsigned long long>(choice.bytes),
                    std::string((*chosen)->name()).c_str(), choice.predictedUs);
      }
  return 0;
}
