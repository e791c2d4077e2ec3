// Fusion at communicator init (src/runtime/topo_fusion.h): ranks as threads and as processes
// with different declared hosts (LOOM_HOSTID / Config::hostId) get the right host grouping and
// the right path between every two ranks.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bootstrap/store.h"
#include "launcher.h"
#include "runtime/communicator.h"
#include "runtime/topo_fusion.h"
#include "topology/discover.h"
#include "topology/synthetic.h"

namespace loom::runtime {
namespace {

// n ranks as threads over an in-memory store; rank r declares host hostIds[r].
std::vector<std::unique_ptr<Communicator>> makeComms(const std::vector<std::string>& hostIds,
                                                     const Config& base) {
  const int n = static_cast<int>(hostIds.size());
  auto store = std::make_shared<bootstrap::InMemoryStore>();
  std::vector<std::unique_ptr<Communicator>> comms(static_cast<size_t>(n));
  std::vector<Status> status(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) {
    threads.emplace_back([&, r] {
      Communicator::Init init;
      init.store = store;
      init.rank = r;
      init.nranks = n;
      init.commHash = 0x70707070u;
      init.config = base;
      init.config.hostId = hostIds[static_cast<size_t>(r)];
      init.config.socketIfname = "lo";
      init.config.timeoutMs = 30000;
      Result<std::unique_ptr<Communicator>> c = Communicator::create(std::move(init));
      if (c.isOk())
        comms[static_cast<size_t>(r)] = std::move(c).value();
      else
        status[static_cast<size_t>(r)] = c.status();
    });
  }
  for (std::thread& t : threads)
    t.join();
  for (int r = 0; r < n; ++r)
    EXPECT_TRUE(status[static_cast<size_t>(r)].isOk()) << status[static_cast<size_t>(r)].toString();
  return comms;
}

TEST(TopoFusion, ThreadsWithDeclaredHostsAreGroupedByHost) {
  auto comms = makeComms({"hostA", "hostB", "hostA", "hostB", "hostC"}, Config{});
  ASSERT_EQ(comms.size(), 5u);
  for (const auto& c : comms) {
    ASSERT_NE(c, nullptr);
    const TopoView& v = c->topology();
    ASSERT_EQ(v.nranks(), 5);
    EXPECT_EQ(v.hosts().nhosts(), 3);
    EXPECT_EQ(v.hosts().ranksOn(0), (std::vector<int>{0, 2}));
    EXPECT_EQ(v.hosts().ranksOn(1), (std::vector<int>{1, 3}));
    EXPECT_EQ(v.hosts().ranksOn(2), (std::vector<int>{4}));
    for (int h = 0; h < 3; ++h)
      EXPECT_NE(v.system(h), nullptr) << "host " << h << " sent no topology";
    EXPECT_EQ(v.path(0, 1).type, topo::PathType::kNet);
    EXPECT_EQ(v.path(0, 0).type, topo::PathType::kLoc);
    EXPECT_EQ(v.path(1, 4).type, topo::PathType::kNet);
    EXPECT_LT(v.path(0, 2).type, topo::PathType::kNet);  // same host
    EXPECT_EQ(v.place(3).pid, getpid());
    EXPECT_EQ(v.place(3).hostId, "hostid:hostB");  // base/host.h marks overrides
  }
}

TEST(TopoFusion, TopoFileGivesEveryHostThatGraph) {
  Config config;
  config.topoFile = std::string(LOOM_TOPO_FIXTURES) + "/dgx-h100.xml";
  auto comms = makeComms({"n0", "n0", "n1"}, config);
  ASSERT_NE(comms[0], nullptr);
  const TopoView& v = comms[0]->topology();
  ASSERT_NE(v.system(0), nullptr);
  EXPECT_EQ(v.system(0)->count(topo::NodeType::kGpu), 8);
  EXPECT_EQ(v.system(1)->count(topo::NodeType::kGpu), 8);
}

TEST(TopoFusion, PathsFollowTheRanksPlaces) {
  Result<topo::System> dgx = topo::System::fromXml(topo::makeDgxH100("dgx"));
  ASSERT_TRUE(dgx.isOk());
  auto place = [](const char* host, int gpu, int numa) {
    RankPlace p;
    p.hostId = host;
    p.hostName = host;
    p.pid = 1;
    p.cpus = {0, 1};
    p.gpu = gpu;
    p.numa = numa;
    return p;
  };
  const std::vector<std::vector<uint8_t>> all = {
      encodePlace(place("a", 0, 0), &*dgx, true), encodePlace(place("a", 1, 0), &*dgx, false),
      encodePlace(place("a", -1, -1), &*dgx, false), encodePlace(place("a", -1, 1), &*dgx, false),
      encodePlace(place("b", 0, 0), &*dgx, true)};
  Result<TopoView> v = TopoView::fromExchange(all);
  ASSERT_TRUE(v.isOk()) << v.status().toString();
  EXPECT_EQ(topo::matrixCell(v->path(0, 1)), "NV18");
  EXPECT_EQ(v->path(0, 2).type, topo::PathType::kSys);  // rank 2 is not bound to one socket
  EXPECT_EQ(v->path(0, 3).type, topo::PathType::kSys);  // GPU0 to the other socket's CPU
  EXPECT_EQ(v->path(0, 4).type, topo::PathType::kNet);
  EXPECT_DOUBLE_EQ(v->path(0, 4).bandwidthGBs, 50.0);  // 400 Gb/s ports
  EXPECT_EQ(v->place(1).node, dgx->nodesOf(topo::NodeType::kGpu)[1]);

  std::vector<std::vector<uint8_t>> corrupt = all;
  corrupt[1].resize(corrupt[1].size() / 2);
  EXPECT_FALSE(TopoView::fromExchange(corrupt).isOk());
  corrupt = all;
  corrupt[2][0] ^= 0xff;
  EXPECT_FALSE(TopoView::fromExchange(corrupt).isOk());
}

TEST(TopoFusion, ProcessesWithDeclaredHostsAreGroupedByHost) {
  const std::vector<std::map<std::string, std::string>> perRank = {{{"LOOM_HOSTID", "x"}},
                                                                   {{"LOOM_HOSTID", "y"}},
                                                                   {{"LOOM_HOSTID", "x"}},
                                                                   {{"LOOM_HOSTID", "y"}}};
  test::LaunchResult r = test::launchRanks(
      LOOM_TOPO_PATH, {"--ranks", "--json"}, 4,
      {{"LOOM_SOCKET_IFNAME", "lo"}, {"LOOM_TIMEOUT_MS", "30000"}}, 60000, perRank);
  ASSERT_FALSE(r.timedOut);
  ASSERT_EQ(r.ranks.size(), 4u);
  for (const test::RankExit& e : r.ranks)
    EXPECT_EQ(e.exitCode, 0) << e.output;
  const std::string& out = r.ranks[0].output;
  EXPECT_NE(out.find("\"nranks\": 4, \"nhosts\": 2"), std::string::npos) << out;
  EXPECT_NE(out.find("\"id\": \"hostid:x\", \"topology\": true, \"ranks\": [0, 2]"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("\"id\": \"hostid:y\", \"topology\": true, \"ranks\": [1, 3]"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("[\"X\", \"NET\", \"LOC\", \"NET\"]"), std::string::npos) << out;
  for (size_t i = 1; i < r.ranks.size(); ++i)
    EXPECT_EQ(r.ranks[i].output.find("\"nranks\""), std::string::npos);  // only rank 0 prints
}

}  // namespace
}  // namespace loom::runtime
