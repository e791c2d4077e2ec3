// The aggregated simulator (simulate.h, simulateRounds) and the choice between it and the
// exact one (simulateAlgorithm).
//
// A round of a channel is a run of consecutive steps none of which touches elements another
// step of the run touches (the steps the executor can run at once), and which has no send after
// a receive (so that the rounds of all ranks pair their messages alike). A ring's step s (send
// one chunk, receive the next) is one round; its step s+1 forwards what step s received, so it
// starts the next round. The schedule is round-symmetric when every rank has, channel by
// channel, the same rounds with the same step kinds and the same peers relative to itself
// (peer - rank mod n). Then a round is described by rank 0's steps, and the round of every rank
// is simulated at once by simulate() on a schedule of just that round (peers shifted, each step
// moving the largest count any rank moves there, regions made disjoint since no step of a round
// waits for another). Identical rounds are simulated once; rounds add up as if separated by a
// barrier.
#include <algorithm>
#include <map>

#include "algorithms/builder.h"
#include "algorithms/simulate.h"
#include "algorithms/simulate_internal.h"

namespace loom::algo {
namespace {

// One step of a round, relative to its rank.
struct RoundStep {
  StepKind kind = StepKind::kSend;
  int relPeer = 0;     // (peer - rank) mod n; 0 for local steps
  bool self = false;   // a finalize-only self copy: moves nothing
  uint64_t count = 0;  // the largest over ranks
};
using Round = std::vector<RoundStep>;

constexpr size_t kMaxRoundSteps = 4096;  // a round is checked step against step

Status splitRounds(const RankSchedule& rs, int rank, int n, std::vector<std::vector<Round>>* out) {
  out->assign(rs.channels.size(), {});
  for (size_t c = 0; c < rs.channels.size(); ++c) {
    const auto& steps = rs.channels[c].steps;
    auto& rounds = (*out)[c];
    size_t begin = 0;       // first step of the current round
    bool received = false;  // the current round has a receive
    for (size_t i = 0; i < steps.size(); ++i) {
      // A send after a receive starts a round, so that the rounds of all ranks pair their
      // messages alike (send k meets receive k) even where steps could run further ahead.
      bool fresh = rounds.empty() || (steps[i].kind == StepKind::kSend && received);
      for (size_t j = begin; j < i && !fresh; ++j)
        fresh = sim::conflicts(steps[j], steps[i]);
      if (fresh) received = false;
      received =
          received || steps[i].kind == StepKind::kRecv || steps[i].kind == StepKind::kRecvReduce;
      if (fresh) {
        rounds.emplace_back();
        begin = i;
      }
      if (i - begin >= kMaxRoundSteps) {
        return invalidArgument("simulateRounds: rank " + std::to_string(rank) + " channel " +
                               std::to_string(c) + " has a round of more than " +
                               std::to_string(kMaxRoundSteps) + " independent steps");
      }
      const Step& s = steps[i];
      RoundStep rstep;
      rstep.kind = s.kind;
      const bool message =
          s.kind == StepKind::kSend || s.kind == StepKind::kRecv || s.kind == StepKind::kRecvReduce;
      rstep.relPeer = message ? modRank(s.peer - rank, n) : 0;
      rstep.self = s.kind == StepKind::kCopy && s.src == s.dst;
      rstep.count = s.count();
      rounds.back().push_back(rstep);
    }
  }
  return Status::ok();
}

// Folds rank r's rounds into its class's (those of rank r mod period), keeping the largest
// counts.
Status mergeRounds(const std::vector<std::vector<Round>>& mine, int rank, int period,
                   std::vector<std::vector<Round>>* ref) {
  auto differs = [rank, period](size_t c, size_t j, const std::string& what) {
    return invalidArgument("simulateRounds: not round-symmetric: rank " + std::to_string(rank) +
                           " channel " + std::to_string(c) + " round " + std::to_string(j) +
                           " differs from rank " + std::to_string(rank % period) + "'s (" + what +
                           ")");
  };
  if (mine.size() != ref->size()) return differs(0, 0, "channel count");
  for (size_t c = 0; c < mine.size(); ++c) {
    if (mine[c].size() != (*ref)[c].size()) return differs(c, 0, "round count");
    for (size_t j = 0; j < mine[c].size(); ++j) {
      Round& r = (*ref)[c][j];
      if (mine[c][j].size() != r.size()) return differs(c, j, "steps");
      for (size_t k = 0; k < r.size(); ++k) {
        const RoundStep& m = mine[c][j][k];
        if (m.kind != r[k].kind || m.relPeer != r[k].relPeer || m.self != r[k].self)
          return differs(c, j, "step " + std::to_string(k));
        r[k].count = std::max(r[k].count, m.count);
      }
    }
  }
  return Status::ok();
}

using Rounds = std::vector<std::vector<Round>>;  // per channel

// The schedule of round j on every rank and channel; rank r does what its class (r mod
// refs.size()) does.
Schedule roundSchedule(const CollectiveArgs& args, const std::vector<Rounds>& refs, size_t j) {
  Schedule s;
  s.args = args;
  s.algorithm = "round";
  const int n = args.nranks;
  const int period = static_cast<int>(refs.size());
  s.ranks.resize(static_cast<size_t>(n));
  for (int r = 0; r < n; ++r) {
    const Rounds& ref = refs[static_cast<size_t>(r % period)];
    RankSchedule& rs = s.ranks[static_cast<size_t>(r)];
    rs.channels.resize(ref.size());
    uint64_t at = 0;  // disjoint scratch regions
    auto fresh = [&at](uint64_t count) {
      const Region reg{BufferId::kScratch, at, count};
      at += count;
      return reg;
    };
    for (size_t c = 0; c < ref.size(); ++c) {
      if (j >= ref[c].size()) continue;
      for (const RoundStep& st : ref[c][j]) {
        const int peer = modRank(r + st.relPeer, n);
        Step step;
        switch (st.kind) {
          case StepKind::kSend:
            step = Step::send(peer, fresh(st.count));
            break;
          case StepKind::kRecv:
            step = Step::recv(peer, fresh(st.count));
            break;
          case StepKind::kRecvReduce:
            step = Step::recvReduce(peer, fresh(st.count), fresh(st.count));
            break;
          case StepKind::kCopy: {
            const Region src = fresh(st.count);
            step = Step::copy(src, st.self ? src : fresh(st.count));
            break;
          }
          case StepKind::kReduce:
            step = Step::reduce(fresh(st.count), fresh(st.count), fresh(st.count));
            break;
        }
        rs.channels[c].steps.push_back(step);
      }
    }
    rs.scratchCount = at;
  }
  return s;
}

// Round j of every class and channel, as a key for identical rounds.
std::vector<uint64_t> roundKey(const std::vector<Rounds>& refs, size_t j) {
  std::vector<uint64_t> key;
  for (const Rounds& ref : refs) {
    for (size_t c = 0; c < ref.size(); ++c) {
      key.push_back(j < ref[c].size() ? ref[c][j].size() : 0);
      if (j >= ref[c].size()) continue;
      for (const RoundStep& s : ref[c][j]) {
        key.push_back(static_cast<uint64_t>(s.kind) << 40 | static_cast<uint64_t>(s.self) << 32 |
                      static_cast<uint32_t>(s.relPeer));
        key.push_back(s.count);
      }
    }
  }
  return key;
}

// The ranks whose rounds are built and compared: all of them when that is at most maxSteps
// steps (estimated from rank 0), else whole periods spread evenly over the ranks (the first
// two, the last, and as many in between as the budget holds).
std::vector<int> ranksToCheck(int n, int period, uint64_t maxSteps, const RankBuilder& build,
                              RankSchedule* scratch) {
  uint64_t steps0 = 1;
  if (build(0, scratch).isOk()) {
    for (const Channel& c : scratch->channels)
      steps0 += c.steps.size();
  }
  std::vector<int> ranks;
  const uint64_t all = steps0 * static_cast<uint64_t>(n);
  const int periods = n / period;
  const uint64_t budgetPeriods = maxSteps / (steps0 * static_cast<uint64_t>(period));
  if (all <= maxSteps || periods <= 3 || budgetPeriods >= static_cast<uint64_t>(periods)) {
    for (int r = 0; r < n; ++r)
      ranks.push_back(r);
    return ranks;
  }
  const int take = static_cast<int>(std::max<uint64_t>(3, budgetPeriods));
  std::vector<int> chosen{0, 1, periods - 1};
  for (int i = 1; i + 2 < take; ++i)
    chosen.push_back(static_cast<int>(static_cast<int64_t>(periods - 1) * i / (take - 2)));
  std::sort(chosen.begin(), chosen.end());
  chosen.erase(std::unique(chosen.begin(), chosen.end()), chosen.end());
  for (int p : chosen)
    for (int r = p * period; r < (p + 1) * period; ++r)
      ranks.push_back(r);
  return ranks;
}

}  // namespace

Result<SimResult> simulateRounds(const CollectiveArgs& args, const RankBuilder& build,
                                 const SimNetwork& network, const SimOptions& options) {
  const int n = args.nranks;
  if (n != network.nranks()) {
    return invalidArgument("simulateRounds: " + std::to_string(n) + " ranks but the network has " +
                           std::to_string(network.nranks()));
  }
  const int period =
      options.roundPeriod >= 1 && n % options.roundPeriod == 0 ? options.roundPeriod : 1;
  std::vector<Rounds> refs(static_cast<size_t>(std::min(period, n)));
  Rounds mine;
  RankSchedule rs;
  const std::vector<int> checked = ranksToCheck(n, period, options.maxRoundCheckSteps, build, &rs);
  for (int r : checked) {
    LOOM_RETURN_IF_ERROR(build(r, &rs));
    Rounds& ref = refs[static_cast<size_t>(r % period)];
    LOOM_RETURN_IF_ERROR(splitRounds(rs, r, n, r < period ? &ref : &mine));
    if (r >= period) LOOM_RETURN_IF_ERROR(mergeRounds(mine, r, period, &ref));
  }
  size_t nrounds = 0;
  for (const Rounds& ref : refs)
    for (const auto& ch : ref)
      nrounds = std::max(nrounds, ch.size());
  SimResult total;
  total.linkBytes.assign(network.links().size(), 0);
  std::map<std::vector<uint64_t>, SimResult> memo;
  SimOptions roundOptions = options;
  roundOptions.record = false;
  roundOptions.maxExactSteps = UINT64_MAX;  // one round of every rank: small by construction
  for (size_t j = 0; j < nrounds; ++j) {
    std::vector<uint64_t> key = roundKey(refs, j);
    auto it = memo.find(key);
    if (it == memo.end()) {
      Result<SimResult> one = simulate(roundSchedule(args, refs, j), network, roundOptions);
      if (!one.isOk())
        return one.status().withContext("simulateRounds: round " + std::to_string(j));
      total.stepCount += one->stepCount;
      total.slices += one->slices;
      total.flows += one->flows;
      it = memo.emplace(std::move(key), std::move(one).value()).first;
    }
    const SimResult& r = it->second;
    total.timeUs += r.timeUs;
    for (size_t l = 0; l < r.linkBytes.size(); ++l)
      total.linkBytes[l] += r.linkBytes[l];
  }
  total.rankEndUs.assign(static_cast<size_t>(n), total.timeUs);
  total.method = "rounds (" + std::to_string(memo.size()) + " distinct of " +
                 std::to_string(nrounds) +
                 (static_cast<int>(checked.size()) < n
                      ? "; symmetry checked on " + std::to_string(checked.size()) + " of " +
                            std::to_string(n) + " ranks"
                      : std::string()) +
                 ")";
  return total;
}

Result<SimResult> simulateAlgorithm(const Algorithm& algorithm, const CollectiveArgs& args,
                                    const SimNetwork& network, const SimOptions& options) {
  RankSchedule first;
  LOOM_RETURN_IF_ERROR(algorithm.build(args, 0, &first));
  uint64_t steps0 = 0;
  for (const Channel& c : first.channels)
    steps0 += c.steps.size();
  const RankBuilder builder = [&](int rank, RankSchedule* out) {
    return algorithm.build(args, rank, out);
  };
  if (steps0 * static_cast<uint64_t>(args.nranks) <= options.maxExactSteps) {
    Schedule schedule;
    LOOM_RETURN_IF_ERROR(buildAll(algorithm, args, &schedule));
    uint64_t steps = 0;
    for (const RankSchedule& rs : schedule.ranks)
      for (const Channel& c : rs.channels)
        steps += c.steps.size();
    if (steps <= options.maxExactSteps) return simulate(schedule, network, options);
  }
  return simulateRounds(args, builder, network, options);
}

}  // namespace loom::algo
