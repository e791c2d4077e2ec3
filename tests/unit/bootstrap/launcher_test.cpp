#include "bootstrap/launcher.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <thread>

#include "test_util.h"

namespace loom::bootstrap {
namespace {

using namespace loom::bootstrap::testing;
using Vars = std::map<std::string, std::string>;

class FakeProcess final : public ProcessInfo {
 public:
  explicit FakeProcess(std::optional<int64_t> proxy = std::nullopt) : proxy_(proxy) {}
  std::optional<int64_t> ancestorPid(std::string_view name) const override {
    return name == "hydra_pmi_proxy" ? proxy_ : std::nullopt;
  }

 private:
  std::optional<int64_t> proxy_;
};

Result<LaunchInfo> detect(const Vars& vars, const ProcessInfo& process = FakeProcess()) {
  MapEnvironment env(vars);
  Result<Config> config = Config::fromEnvironment(env);
  if (!config.isOk()) return config.takeStatus();
  return detectLaunch(env, *config, process);
}

LaunchInfo detectOk(const Vars& vars, const ProcessInfo& process = FakeProcess()) {
  Result<LaunchInfo> r = detect(vars, process);
  EXPECT_TRUE(r.isOk()) << r.status().toString();
  return r.isOk() ? *r : LaunchInfo();
}

void expectError(const Vars& vars, Code code, const std::string& needle) {
  Result<LaunchInfo> r = detect(vars);
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), code) << r.status().toString();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().toString();
}

Vars openMpi(int rank, int size, int localSize) {
  return {{"OMPI_COMM_WORLD_RANK", std::to_string(rank)},
          {"OMPI_COMM_WORLD_SIZE", std::to_string(size)},
          {"OMPI_COMM_WORLD_LOCAL_RANK", std::to_string(rank % localSize)},
          {"OMPI_COMM_WORLD_LOCAL_SIZE", std::to_string(localSize)},
          {"OMPI_MCA_ess_base_jobid", "2021720065"},
          {"PMIX_NAMESPACE", "2021720065"}};
}

TEST(LauncherTest, DetectsLoomrunWithUniqueId) {
  UniqueId id;
  id.root = SocketAddress::ipv4Loopback(5555);
  id.secret = randomSecret();
  LaunchInfo info = detectOk({{"LOOM_RANK", "1"},
                              {"LOOM_WORLD_SIZE", "4"},
                              {"LOOM_LOCAL_RANK", "1"},
                              {"LOOM_LOCAL_SIZE", "4"},
                              {"LOOM_UNIQUE_ID", id.toHex()}});
  EXPECT_EQ(info.launcher, "loom");
  EXPECT_EQ(info.rank, 1);
  EXPECT_EQ(info.worldSize, 4);
  EXPECT_EQ(info.localRank, 1);
  EXPECT_EQ(info.localSize, 4);
  ASSERT_TRUE(info.uniqueId.has_value());
  EXPECT_EQ(info.root->toString(), "127.0.0.1:5555");
  EXPECT_EQ(info.secret, id.secret);
  EXPECT_FALSE(info.secretIsDerived);
  EXPECT_EQ(info.rendezvousId().toHex(), id.toHex());
}

TEST(LauncherTest, LoomRankZeroWithUniqueIdDoesNotStartARoot) {
  UniqueId id;
  id.root = SocketAddress::ipv4Loopback(5555);
  LaunchInfo info =
      detectOk({{"LOOM_RANK", "0"}, {"LOOM_WORLD_SIZE", "2"}, {"LOOM_UNIQUE_ID", id.toHex()}});
  EXPECT_FALSE(info.startsRoot());
  LaunchInfo own =
      detectOk({{"LOOM_RANK", "0"}, {"LOOM_WORLD_SIZE", "2"}, {"LOOM_COMM_ID", "127.0.0.1:7000"}});
  EXPECT_TRUE(own.startsRoot());
  EXPECT_EQ(own.root->toString(), "127.0.0.1:7000");
}

TEST(LauncherTest, DetectsOpenMpiOnOneHostWithDerivedLoopbackRoot) {
  LaunchInfo info = detectOk(openMpi(3, 4, 4));
  EXPECT_EQ(info.launcher, "openmpi");
  EXPECT_EQ(info.rank, 3);
  EXPECT_EQ(info.worldSize, 4);
  EXPECT_EQ(info.localRank, 3);
  EXPECT_EQ(info.localSize, 4);
  EXPECT_EQ(info.jobId, "2021720065");
  ASSERT_TRUE(info.root.has_value());
  EXPECT_TRUE(info.root->isLoopback());
  EXPECT_EQ(info.root->port(), derivedRootPort("openmpi", "2021720065"));
  EXPECT_TRUE(info.secretIsDerived);
  EXPECT_FALSE(info.startsRoot());
  EXPECT_TRUE(detectOk(openMpi(0, 4, 4)).startsRoot());
}

TEST(LauncherTest, DerivedSecretIsEqualOnEveryRankAndDiffersBetweenJobs) {
  LaunchInfo a = detectOk(openMpi(0, 4, 4));
  LaunchInfo b = detectOk(openMpi(3, 4, 4));
  EXPECT_EQ(a.secret, b.secret);
  EXPECT_EQ(a.root->toString(), b.root->toString());
  Vars other = openMpi(0, 4, 4);
  other["OMPI_MCA_ess_base_jobid"] = "999";
  EXPECT_NE(detectOk(other).secret, a.secret);
}

TEST(LauncherTest, DerivedPortIsStableAndInItsRange) {
  uint16_t p = derivedRootPort("slurm", "123.0");
  EXPECT_EQ(p, derivedRootPort("slurm", "123.0"));
  for (const char* job : {"1", "2", "abc", ""}) {
    uint16_t q = derivedRootPort("openmpi", job);
    EXPECT_GE(q, 12000);
    EXPECT_LT(q, 32000);
  }
}

TEST(LauncherTest, OpenMpiOnSeveralHostsNeedsCommId) {
  expectError(openMpi(0, 8, 4), Code::kInvalidUsage, "LOOM_COMM_ID");
  Vars v = openMpi(5, 8, 4);
  v["LOOM_COMM_ID"] = "127.0.0.1:6000";
  LaunchInfo info = detectOk(v);
  EXPECT_EQ(info.root->toString(), "127.0.0.1:6000");
  EXPECT_EQ(info.localRank, 1);
  EXPECT_TRUE(info.secretIsDerived);
}

TEST(LauncherTest, DetectsMpichUsingTheHydraProxyAsJobId) {
  Vars v = {{"PMI_RANK", "1"},
            {"PMI_SIZE", "2"},
            {"MPI_LOCALRANKID", "1"},
            {"MPI_LOCALNRANKS", "2"},
            {"PMI_FD", "6"}};
  LaunchInfo info = detectOk(v, FakeProcess(4242));
  EXPECT_EQ(info.launcher, "mpich");
  EXPECT_EQ(info.rank, 1);
  EXPECT_EQ(info.worldSize, 2);
  EXPECT_EQ(info.localSize, 2);
  EXPECT_EQ(info.jobId, "hydra-proxy-4242");
  EXPECT_TRUE(info.root->isLoopback());
  // Without a proxy (or a job id) there is nothing to derive the root from.
  Result<LaunchInfo> r = detect(v, FakeProcess());
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kInvalidUsage);
}

TEST(LauncherTest, MpichOnSeveralHostsDoesNotUseTheProxyPid) {
  Vars v = {{"PMI_RANK", "0"},
            {"PMI_SIZE", "4"},
            {"MPI_LOCALRANKID", "0"},
            {"MPI_LOCALNRANKS", "2"},
            {"LOOM_COMM_ID", "127.0.0.1:6001"}};
  LaunchInfo info = detectOk(v, FakeProcess(4242));
  EXPECT_EQ(info.jobId, "");  // proxies differ between hosts
  EXPECT_EQ(info.root->toString(), "127.0.0.1:6001");
}

TEST(LauncherTest, DetectsSlurmStepWithTasksPerNodeSpec) {
  Vars v = {{"SLURM_PROCID", "6"},        {"SLURM_NTASKS", "7"},
            {"SLURM_LOCALID", "0"},       {"SLURM_NODEID", "3"},
            {"SLURM_STEP_ID", "0"},       {"SLURM_JOB_ID", "1234"},
            {"SLURM_NNODES", "4"},        {"SLURM_STEP_TASKS_PER_NODE", "2(x3),1"},
            {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"}};
  LaunchInfo info = detectOk(v);
  EXPECT_EQ(info.launcher, "slurm");
  EXPECT_EQ(info.rank, 6);
  EXPECT_EQ(info.worldSize, 7);
  EXPECT_EQ(info.localRank, 0);
  EXPECT_EQ(info.localSize, 1);
  EXPECT_EQ(info.jobId, "1234.0");
  EXPECT_EQ(info.root->toString(), "127.0.0.1:29501");
}

TEST(LauncherTest, SlurmSingleNodeDerivesLoopbackRoot) {
  Vars v = {{"SLURM_PROCID", "0"},  {"SLURM_NTASKS", "4"},  {"SLURM_LOCALID", "0"},
            {"SLURM_STEP_ID", "2"}, {"SLURM_JOB_ID", "77"}, {"SLURM_NNODES", "1"}};
  LaunchInfo info = detectOk(v);
  EXPECT_EQ(info.root->toString(), "127.0.0.1:" + std::to_string(derivedRootPort("slurm", "77.2")));
  EXPECT_EQ(info.localSize, -1);  // Slurm did not say; the single node is what counts
}

TEST(LauncherTest, SlurmBatchScriptIsNotALaunch) {
  // The batch script has SLURM_PROCID but is not a task of a step.
  expectError({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "4"}, {"SLURM_JOB_ID", "77"}},
              Code::kInvalidUsage, "no launcher detected");
}

TEST(LauncherTest, DetectsTorchrunRootNextToMasterPort) {
  Vars v = {{"RANK", "2"},
            {"WORLD_SIZE", "8"},
            {"LOCAL_RANK", "2"},
            {"LOCAL_WORLD_SIZE", "4"},
            {"MASTER_ADDR", "127.0.0.1"},
            {"MASTER_PORT", "29500"},
            {"TORCHELASTIC_RUN_ID", "run7"},
            {"TORCHELASTIC_RESTART_COUNT", "1"}};
  LaunchInfo info = detectOk(v);
  EXPECT_EQ(info.launcher, "torchrun");
  EXPECT_EQ(info.rank, 2);
  EXPECT_EQ(info.localSize, 4);
  EXPECT_EQ(info.jobId, "run7/1");
  EXPECT_EQ(info.root->toString(), "127.0.0.1:29501");
  EXPECT_TRUE(info.secretIsDerived);
}

TEST(LauncherTest, TorchrunUnderSrunIsTorchrun) {
  Vars v = {{"RANK", "5"},
            {"WORLD_SIZE", "8"},
            {"LOCAL_RANK", "1"},
            {"LOCAL_WORLD_SIZE", "4"},
            {"MASTER_ADDR", "127.0.0.1"},
            {"MASTER_PORT", "29500"},
            {"TORCHELASTIC_RUN_ID", "r"},
            {"SLURM_PROCID", "1"},
            {"SLURM_NTASKS", "2"},
            {"SLURM_STEP_ID", "0"},
            {"SLURM_JOB_ID", "9"}};
  LaunchInfo info = detectOk(v);
  EXPECT_EQ(info.launcher, "torchrun");
  EXPECT_EQ(info.rank, 5);
}

TEST(LauncherTest, OpenMpiInsideSlurmAllocationIsOpenMpi) {
  Vars v = openMpi(1, 2, 2);
  v["SLURM_PROCID"] = "0";
  v["SLURM_NTASKS"] = "2";
  v["SLURM_STEP_ID"] = "0";
  EXPECT_EQ(detectOk(v).launcher, "openmpi");
}

TEST(LauncherTest, UniqueIdTakesPrecedenceOverCommIdAndMasterAddr) {
  UniqueId id;
  id.root = SocketAddress::ipv4Loopback(5000);
  id.secret = randomSecret();
  Vars v = openMpi(0, 2, 2);
  v["LOOM_UNIQUE_ID"] = id.toHex();
  v["LOOM_COMM_ID"] = "127.0.0.1:6000";
  v["MASTER_ADDR"] = "127.0.0.1";
  v["MASTER_PORT"] = "7000";
  LaunchInfo info = detectOk(v);
  EXPECT_EQ(info.root->toString(), "127.0.0.1:5000");
  EXPECT_EQ(info.secret, id.secret);
  EXPECT_FALSE(info.startsRoot());
}

TEST(LauncherTest, CommIdTakesPrecedenceOverMasterAddr) {
  Vars v = openMpi(0, 2, 2);
  v["LOOM_COMM_ID"] = "127.0.0.1:6000";
  v["MASTER_ADDR"] = "127.0.0.1";
  v["MASTER_PORT"] = "7000";
  EXPECT_EQ(detectOk(v).root->toString(), "127.0.0.1:6000");
}

TEST(LauncherTest, LoomSecretOverridesDerivedSecret) {
  Vars v = openMpi(0, 2, 2);
  v["LOOM_SECRET"] = "00112233445566778899aabbccddeeff";
  LaunchInfo info = detectOk(v);
  EXPECT_FALSE(info.secretIsDerived);
  EXPECT_EQ(info.secret[0], 0x00);
  EXPECT_EQ(info.secret[15], 0xff);
  v["LOOM_SECRET"] = "0011";
  expectError(v, Code::kInvalidArgument, "LOOM_SECRET must be 32 hex digits");
}

TEST(LauncherTest, BadValuesAreInvalidArgumentNamingTheVariable) {
  Vars v = openMpi(0, 2, 2);
  v["OMPI_COMM_WORLD_RANK"] = "zero";
  expectError(v, Code::kInvalidArgument, "OMPI_COMM_WORLD_RANK");
  v = openMpi(0, 2, 2);
  v["OMPI_COMM_WORLD_RANK"] = "2";
  expectError(v, Code::kInvalidArgument, "OMPI_COMM_WORLD_RANK=2 is not in [0, ");
  v = openMpi(0, 2, 2);
  v["OMPI_COMM_WORLD_SIZE"] = "0";
  expectError(v, Code::kInvalidArgument, "OMPI_COMM_WORLD_SIZE=0");
  expectError({{"RANK", "0"}, {"WORLD_SIZE", "-3"}}, Code::kInvalidArgument, "WORLD_SIZE=-3");
  expectError({{"LOOM_RANK", "x"}, {"LOOM_WORLD_SIZE", "2"}}, Code::kInvalidArgument, "LOOM_RANK");
  expectError({{"LOOM_RANK", "0"}}, Code::kInvalidArgument, "LOOM_WORLD_SIZE");
  expectError(
      {{"PMI_RANK", "0"}, {"PMI_SIZE", "2"}, {"MPI_LOCALRANKID", "3"}, {"MPI_LOCALNRANKS", "2"}},
      Code::kInvalidArgument, "MPI_LOCALRANKID=3");
  Vars bad = openMpi(0, 2, 2);
  bad["LOOM_UNIQUE_ID"] = std::string(256, '0');
  expectError(bad, Code::kInvalidArgument, "LOOM_UNIQUE_ID");
  bad = openMpi(0, 2, 2);
  bad["LOOM_COMM_ID"] = "nonsense";
  expectError(bad, Code::kInvalidArgument, "LOOM_COMM_ID");
}

TEST(LauncherTest, NoLauncherIsInvalidUsage) {
  expectError({}, Code::kInvalidUsage, "no launcher detected");
  expectError({{"LOOM_RANK", "0"}, {"LOOM_WORLD_SIZE", "2"}}, Code::kInvalidUsage,
              "LOOM_UNIQUE_ID");
}

TEST(LauncherTest, RealProcessInfoFindsItsParent) {
  std::ifstream comm("/proc/" + std::to_string(::getppid()) + "/comm");
  std::string parent;
  ASSERT_TRUE(std::getline(comm, parent));
  EXPECT_EQ(ProcessInfo::current().ancestorPid(parent), ::getppid());
  EXPECT_FALSE(ProcessInfo::current().ancestorPid("no-such-loom-ancestor").has_value());
}

TEST(LauncherTest, LaunchStoreIsSharedWithinAProcess) {
  Vars v = openMpi(0, 1, 1);
  v["LOOM_COMM_ID"] = "127.0.0.1:" + std::to_string(unusedPort());
  LaunchInfo info = detectOk(v);
  Result<std::shared_ptr<TcpStoreClient>> first =
      connectLaunchStore(info, Deadline::afterMs(kConnectMs));
  ASSERT_TRUE(first.isOk()) << first.status().toString();
  Result<std::shared_ptr<TcpStoreClient>> second =
      connectLaunchStore(info, Deadline::afterMs(kConnectMs));
  ASSERT_TRUE(second.isOk()) << second.status().toString();
  EXPECT_EQ(first->get(), second->get());
}

TEST(LauncherTest, RankZeroStartsTheRootAndEveryRankConnects) {
  constexpr int kRanks = 3;
  std::string commId = "127.0.0.1:" + std::to_string(unusedPort());
  size_t rootsBefore = detachedRootCount();
  std::vector<std::thread> threads;
  for (int r = 0; r < kRanks; ++r)
    threads.emplace_back([&, r] {
      Vars v = openMpi(r, kRanks, kRanks);
      v["LOOM_COMM_ID"] = commId;
      LaunchInfo info = detectOk(v);
      // Others may come first: connect retries until rank 0's root listens.
      if (r != 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      Result<std::shared_ptr<TcpStoreClient>> store =
          connectLaunchStore(info, Deadline::afterMs(kConnectMs));
      ASSERT_TRUE(store.isOk()) << store.status().toString();
      ASSERT_TRUE((*store)->add("arrived", 1).isOk());
      ASSERT_TRUE((*store)->set("r" + std::to_string(r), Bytes{1}).isOk());
      for (int p = 0; p < kRanks; ++p)
        EXPECT_TRUE((*store)->get("r" + std::to_string(p), Deadline::afterMs(kConnectMs)).isOk());
    });
  for (auto& t : threads)
    t.join();
  // Every rank came and went: the root stops and is reaped.
  Deadline d = Deadline::afterMs(kConnectMs);
  while (detachedRootCount() > rootsBefore && !d.expired())
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(detachedRootCount(), rootsBefore);
}

}  // namespace
}  // namespace loom::bootstrap
