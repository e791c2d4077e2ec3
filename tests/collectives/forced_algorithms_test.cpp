// Every algorithm that the default rule does not pick, forced through the runtime with the
// planner's override (Config::algo, what LOOM_ALGO sets), with ranks as threads over loopback
// (1..8 ranks, one channel) and shm (3 and 5 ranks, two channels), and the hierarchical ones also
// with threads that claim different hosts, two to a host (loopback within, sockets across; 2, 4,
// 5 and 6 ranks, two channels): the collective sweep (every type
// and op, Avg and PreMulSum included, in place and out of place, counts 0, 1, 7 and over a slice)
// must be exact, every rank of an AllReduce must get the same bits where the order of combining
// matters, and the bytes each rank sends must be those of the forced algorithm's schedule (so the
// override really chose it).
//
// LOOM_ALGO is read once per process, so the test builds its communicators from a Config and
// hands them to the C API the way loomCommInitAll does (api/handles.h).
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "algorithms/algorithm.h"
#include "api/handles.h"
#include "base/config.h"
#include "bootstrap/store.h"
#include "loom/loom.h"
#include "ranks.h"
#include "runtime/init.h"
#include "sweep.h"

namespace loom::test {
namespace {

struct Forced {
  const char* name;  // for the test name
  const char* algo;  // Config::algo
  bool movement;     // also sweep the collectives that move data without reducing
};

const Forced kForced[] = {
    {"RecursiveDoublingTreeBruckHalving",
     "allreduce:recursive_doubling;broadcast:double_binary_tree;allgather:bruck;"
     "reducescatter:recursive_halving;alltoall:bruck",
     true},
    {"RabenseifnerScatterAllGather",
     "allreduce:rabenseifner;broadcast:scatter_allgather;allgather:recursive_doubling", true},
    {"DoubleBinaryTree", "allreduce:double_binary_tree", false},
    {"OneShot",
     "allreduce:one_shot;allgather:one_shot;reducescatter:one_shot;broadcast:one_shot;"
     "reduce:one_shot;alltoall:one_shot",
     true},
    {"TwoShot", "allreduce:two_shot", false},
    {"Hierarchical",
     "allreduce:hierarchical;broadcast:hierarchical;allgather:hierarchical;"
     "reducescatter:hierarchical;reduce:hierarchical",
     true},
};

// Transport "hosts": threads that claim to be on different hosts (Config::hostId, what
// LOOM_HOSTID sets), kRanksPerHost to a host, so a host's ranks talk over loopback and hosts
// over sockets, and hierarchical schedules see several hosts.
constexpr int kRanksPerHost = 2;

struct Param {
  Forced forced;
  const char* transport;
  int nranks;
};

bool severalHosts(const Param& p) {
  return std::string(p.transport) == "hosts";
}

int channelsOf(const Param& p) {
  return std::string(p.transport) == "shm" || severalHosts(p) ? 2 : 1;
}

// The host layout the runtime sees (algorithms/host_layout.h): one host unless severalHosts.
algo::HostLayout layoutOf(const Param& p) {
  std::vector<int> hostOf(static_cast<size_t>(p.nranks));
  for (int r = 0; r < p.nranks; ++r)
    hostOf[r] = severalHosts(p) ? r / kRanksPerHost : 0;
  return algo::HostLayout::fromHostOf(hostOf);
}

// initAll (runtime/init.h) with a host identity per rank.
std::vector<std::unique_ptr<runtime::Communicator>> initOnHosts(int nranks, const Config& config) {
  auto store = std::make_shared<bootstrap::InMemoryStore>();
  std::vector<std::unique_ptr<runtime::Communicator>> comms(nranks);
  std::vector<std::thread> threads;
  for (int r = 0; r < nranks; ++r) {
    threads.emplace_back([&, r] {
      runtime::Communicator::Init init;
      init.store = store;
      init.rank = r;
      init.nranks = nranks;
      init.commHash = 0x4859ull;
      init.secret = {1, 2, 3};
      init.config = config;
      init.config.hostId = "forced-host-" + std::to_string(r / kRanksPerHost);
      init.name = "forced";
      Result<std::unique_ptr<runtime::Communicator>> c =
          runtime::Communicator::create(std::move(init));
      EXPECT_TRUE(c.isOk()) << "rank " << r << ": " << c.status().toString();
      if (c.isOk()) comms[r] = std::move(c).value();
    });
  }
  for (std::thread& t : threads)
    t.join();
  for (const auto& c : comms)
    if (!c) return {};
  return comms;
}

std::vector<loomComm_t> initForced(const Param& p) {
  Result<Config> config = Config::fromEnvironment(Environment::process());
  EXPECT_TRUE(config.isOk()) << config.status().toString();
  if (!config.isOk()) return {};
  config->transport = severalHosts(p) ? "auto" : p.transport;
  if (severalHosts(p)) config->socketIfname = "lo";
  config->algo = p.forced.algo;
  config->timeoutMs = 30000;
  config->sliceBytes = 4096;  // the sweep's larger counts span several slices
  // Over shm, two channels: each instance runs on half the elements (and the double binary
  // tree puts one tree on each channel).
  config->nchannels = channelsOf(p);
  std::vector<std::unique_ptr<runtime::Communicator>> all;
  if (severalHosts(p)) {
    all = initOnHosts(p.nranks, *config);
  } else {
    auto made = runtime::initAll(p.nranks, *config, "forced");
    EXPECT_TRUE(made.isOk()) << made.status().toString();
    if (made.isOk()) all = std::move(made).value();
  }
  std::vector<loomComm_t> comms;
  for (auto& c : all) {
    auto* handle = new loomComm();
    handle->comm = std::move(c);
    api::registerComm(handle);
    comms.push_back(handle);
  }
  return comms;
}

class ForcedAlgorithmTest : public testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    comms_ = initForced(GetParam());
    ASSERT_FALSE(comms_.empty());
  }
  void TearDown() override {
    for (loomComm_t c : comms_)
      EXPECT_EQ(loomCommDestroy(c), loomSuccess);
  }
  std::vector<loomComm_t> comms_;
};

TEST_P(ForcedAlgorithmTest, EveryTypeAndOpIsExact) {
  SweepOptions options;
  // One-byte, half (accumulated in float), single and double elements: the schedules do not
  // depend on the type beyond its size, which moves slice boundaries.
  options.types = {loomInt8, loomFloat16, loomFloat32, loomFloat64};
  options.movement = GetParam().forced.movement;
  onEveryRank(GetParam().nranks, [&](int r) { return runSweep(comms_[r], options); });
}

// Values whose sum depends on the order of the additions, and +0/-0 mixes whose Max and Min
// depend on the operand order: every rank must still get the bits of rank 0.
TEST_P(ForcedAlgorithmTest, AllReduceGivesEveryRankTheSameBits) {
  const int n = GetParam().nranks;
  constexpr size_t kCount = 3001;
  std::vector<std::vector<float>> results(n * 3);
  onEveryRank(n, [&](int r) {
    std::vector<std::string> f;
    std::mt19937 random(1234 + r);
    std::uniform_real_distribution<float> value(-1e6f, 1e6f);
    std::vector<float> sums(kCount), zeros(kCount);
    for (size_t i = 0; i < kCount; ++i) {
      sums[i] = value(random) / 3.0f;
      zeros[i] = ((i >> (r % 8)) & 1) != 0 ? -0.0f : 0.0f;
    }
    const loomRedOp_t ops[] = {loomSum, loomMax, loomMin};
    for (int k = 0; k < 3; ++k) {
      std::vector<float>& out = results[r * 3 + k];
      out.assign(kCount, 1.0f);
      const std::vector<float>& in = k == 0 ? sums : zeros;
      if (loomAllReduce(in.data(), out.data(), kCount, loomFloat32, ops[k], comms_[r], nullptr) !=
          loomSuccess)
        f.push_back(std::string("allreduce failed: ") + loomGetLastError(comms_[r]));
    }
    return f;
  });
  for (int r = 1; r < n; ++r) {
    for (int k = 0; k < 3; ++k) {
      EXPECT_EQ(std::memcmp(results[r * 3 + k].data(), results[k].data(), kCount * sizeof(float)),
                0)
          << "rank " << r << " differs from rank 0 for op " << k;
    }
  }
}

// The bytes each rank sends in one AllReduce and one AllToAll (where forced) equal the forced
// algorithm's schedule: the override took effect.
TEST_P(ForcedAlgorithmTest, SendsTheBytesOfTheForcedAlgorithm) {
  const int n = GetParam().nranks;
  const Result<algo::AlgoOverrides> overrides = algo::parseAlgoOverrides(GetParam().forced.algo);
  ASSERT_TRUE(overrides.isOk());
  constexpr uint64_t kCount = 1000;
  auto scheduleBytes = [&](algo::Collective c, int rank) -> uint64_t {
    const algo::Algorithm* forced = overrides->find(c, 0);
    algo::RankSchedule s;
    const int nch = channelsOf(GetParam());
    EXPECT_TRUE(
        forced->build({c, kCount, n, 0, -1, false, nch, layoutOf(GetParam())}, rank, &s).isOk());
    uint64_t elements = 0;
    for (const algo::Channel& channel : s.channels)
      for (const algo::Step& step : channel.steps)
        if (step.kind == algo::StepKind::kSend) elements += step.count();
    return elements * sizeof(int32_t);
  };
  onEveryRank(n, [&](int r) {
    std::vector<std::string> f;
    std::vector<int32_t> in(kCount * n, r), out(kCount * n);
    loomCounters_t before, after;
    loomCommGetCounters(comms_[r], &before);
    if (loomAllReduce(in.data(), out.data(), kCount, loomInt32, loomSum, comms_[r], nullptr) !=
            loomSuccess ||
        loomAllToAll(in.data(), out.data(), kCount, loomInt32, comms_[r], nullptr) != loomSuccess)
      f.push_back(std::string("call failed: ") + loomGetLastError(comms_[r]));
    loomCommGetCounters(comms_[r], &after);
    for (const auto& [coll, c] : {std::pair{loomCollAllReduce, algo::Collective::kAllReduce},
                                  std::pair{loomCollAllToAll, algo::Collective::kAllToAll}}) {
      if (overrides->find(c, 0) == nullptr) continue;  // the planner chooses: nothing to check
      const uint64_t sent = after.bytesSent[coll] - before.bytesSent[coll];
      if (sent != scheduleBytes(c, r))
        f.push_back(std::string(algo::collectiveName(c)) + " sent " + std::to_string(sent) +
                    " bytes, its schedule " + std::to_string(scheduleBytes(c, r)));
    }
    return f;
  });
}

std::vector<Param> params() {
  std::vector<Param> out;
  for (const Forced& forced : kForced) {
    for (int n = 1; n <= 8; ++n)
      out.push_back({forced, "loopback", n});
    out.push_back({forced, "shm", 3});
    out.push_back({forced, "shm", 5});
    if (std::string(forced.name) == "Hierarchical") {
      for (int n : {2, 4, 5, 6})
        out.push_back({forced, "hosts", n});
    }
  }
  return out;
}

std::string paramName(const testing::TestParamInfo<Param>& info) {
  return std::string(info.param.forced.name) + "_" + info.param.transport + "_" +
         std::to_string(info.param.nranks) + "ranks";
}

INSTANTIATE_TEST_SUITE_P(Threads, ForcedAlgorithmTest, testing::ValuesIn(params()), paramName);

}  // namespace
}  // namespace loom::test
