// The ibverbs transport where it cannot run: creating it fails with a message that says why
// (no device, disabled, bad LOOM_IB_HCA), never a crash or a hang. Where an RDMA port is
// active the first test skips: tests/conformance/ibverbs_rxe.sh and the conformance suite
// cover that case.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "base/config.h"
#include "base/doorbell.h"
#include "transports/transport.h"

namespace loom::transport {
namespace {

Result<std::unique_ptr<Transport>> createWith(const Config& config) {
  static std::shared_ptr<Doorbell> doorbell = Doorbell::create().value();
  TransportContext ctx;
  ctx.rank = 0;
  ctx.nranks = 2;
  ctx.config = &config;
  ctx.doorbell = doorbell;
  return createTransport("ibverbs", ctx);
}

TEST(IbverbsTransportTest, IsBuiltIntoTheLibrary) {
  const std::vector<std::string> names = transportNames();
  EXPECT_NE(std::find(names.begin(), names.end(), "ibverbs"), names.end());
}

TEST(IbverbsTransportTest, CreationWithoutAnActivePortFailsWithAClearMessage) {
  Config config;
  config.socketIfname = "lo";
  Result<std::unique_ptr<Transport>> t = createWith(config);
  if (t.isOk()) GTEST_SKIP() << "an RDMA port is active here; the conformance suite covers it";
  EXPECT_EQ(t.status().code(), Code::kSystemError) << t.status().toString();
  EXPECT_EQ(t.status().message().rfind("no usable RDMA device", 0), 0u) << t.status().toString();
}

TEST(IbverbsTransportTest, LoomIbDisableIsNamedInTheError) {
  Config config;
  config.ibDisable = true;
  Result<std::unique_ptr<Transport>> t = createWith(config);
  ASSERT_FALSE(t.isOk());
  EXPECT_NE(t.status().message().find("LOOM_IB_DISABLE=1"), std::string::npos)
      << t.status().toString();
}

TEST(IbverbsTransportTest, MalformedHcaListIsInvalidArgumentBeforeAnyDeviceIsOpened) {
  Config config;
  config.ibHca = "mlx5_0:x";
  Result<std::unique_ptr<Transport>> t = createWith(config);
  ASSERT_FALSE(t.isOk());
  EXPECT_EQ(t.status().code(), Code::kInvalidArgument);
  EXPECT_NE(t.status().message().find("LOOM_IB_HCA"), std::string::npos) << t.status().toString();
}

using Vars = std::map<std::string, std::string>;

TEST(IbverbsTransportTest, OutOfRangeIbVariablesAreRejectedByTheConfigTable) {
  for (const auto& [name, value] :
       std::vector<std::pair<std::string, std::string>>{{"LOOM_IB_SL", "16"},
                                                        {"LOOM_IB_TIMEOUT", "0"},
                                                        {"LOOM_IB_RETRY_CNT", "8"},
                                                        {"LOOM_IB_GID_INDEX", "-2"},
                                                        {"LOOM_IB_QPS_PER_CONNECTION", "17"},
                                                        {"LOOM_IB_TC", "256"}}) {
    Result<Config> c = Config::fromEnvironment(MapEnvironment(Vars{{name, value}}));
    ASSERT_FALSE(c.isOk()) << name << "=" << value;
    EXPECT_NE(c.status().message().find(name), std::string::npos) << c.status().toString();
  }
  EXPECT_TRUE(Config::fromEnvironment(MapEnvironment({{"LOOM_IB_HCA", "^=mlx5_1"},
                                                      {"LOOM_IB_QPS_PER_CONNECTION", "4"}}))
                  .isOk());
}

}  // namespace
}  // namespace loom::transport
