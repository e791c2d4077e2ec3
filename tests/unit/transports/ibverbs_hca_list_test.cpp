// LOOM_IB_HCA parsing and matching (transports/ibverbs/hca_list.h): NCCL's list syntax.
#include <gtest/gtest.h>

#include "transports/ibverbs/hca_list.h"

namespace loom::transport::ibverbs {
namespace {

HcaFilter parsed(const std::string& text) {
  Result<HcaFilter> f = parseHcaList(text);
  EXPECT_TRUE(f.isOk()) << text << ": " << f.status().toString();
  return f.isOk() ? f.value() : HcaFilter();
}

const std::vector<HcaPort> kPorts = {
    {"mlx5_0", 1}, {"mlx5_0", 2}, {"mlx5_1", 1}, {"mlx5_10", 1}, {"rxe0", 1}};

std::vector<std::string> names(const std::vector<HcaPort>& ports) {
  std::vector<std::string> out;
  for (const HcaPort& p : ports)
    out.push_back(p.device + ":" + std::to_string(p.port));
  return out;
}

using V = std::vector<std::string>;

TEST(HcaListTest, EmptyListAllowsEveryDeviceAndPort) {
  EXPECT_EQ(names(selectPorts(parsed(""), kPorts)),
            (V{"mlx5_0:1", "mlx5_0:2", "mlx5_1:1", "mlx5_10:1", "rxe0:1"}));
}

TEST(HcaListTest, NamesMatchByPrefixByDefault) {
  EXPECT_EQ(names(selectPorts(parsed("mlx5_1"), kPorts)), (V{"mlx5_1:1", "mlx5_10:1"}));
  EXPECT_EQ(names(selectPorts(parsed("mlx5"), kPorts)),
            (V{"mlx5_0:1", "mlx5_0:2", "mlx5_1:1", "mlx5_10:1"}));
}

TEST(HcaListTest, EqualsPrefixMatchesExactly) {
  EXPECT_EQ(names(selectPorts(parsed("=mlx5_1"), kPorts)), (V{"mlx5_1:1"}));
  EXPECT_EQ(names(selectPorts(parsed("=mlx5"), kPorts)), V{});
}

TEST(HcaListTest, PortRestrictsToThatPort) {
  EXPECT_EQ(names(selectPorts(parsed("mlx5_0:2,rxe0"), kPorts)), (V{"mlx5_0:2", "rxe0:1"}));
  EXPECT_EQ(names(selectPorts(parsed("mlx5_0:1,mlx5_1"), kPorts)),
            (V{"mlx5_0:1", "mlx5_1:1", "mlx5_10:1"}));
}

TEST(HcaListTest, CaretExcludesTheListedDevices) {
  EXPECT_EQ(names(selectPorts(parsed("^mlx5_0"), kPorts)), (V{"mlx5_1:1", "mlx5_10:1", "rxe0:1"}));
  EXPECT_EQ(names(selectPorts(parsed("^mlx5_0:1"), kPorts)),
            (V{"mlx5_0:2", "mlx5_1:1", "mlx5_10:1", "rxe0:1"}));
}

TEST(HcaListTest, CaretEqualsExcludesExactNamesOnly) {
  HcaFilter f = parsed("^=mlx5_1");
  EXPECT_TRUE(f.exclude());
  EXPECT_TRUE(f.exact());
  EXPECT_EQ(names(selectPorts(f, kPorts)), (V{"mlx5_0:1", "mlx5_0:2", "mlx5_10:1", "rxe0:1"}));
}

TEST(HcaListTest, ParsedEntriesKeepDeviceAndPort) {
  HcaFilter f = parsed("mlx5_0:1,mlx5_1");
  ASSERT_EQ(f.entries().size(), 2u);
  EXPECT_EQ(f.entries()[0].device, "mlx5_0");
  EXPECT_EQ(f.entries()[0].port, 1);
  EXPECT_EQ(f.entries()[1].device, "mlx5_1");
  EXPECT_EQ(f.entries()[1].port, -1);
}

TEST(HcaListTest, BadSyntaxIsInvalidArgumentNamingTheVariableAndItem) {
  for (const std::string bad : {"mlx5_0,", ",mlx5_0", "mlx5_0,,mlx5_1", ":1", "mlx5_0:", "mlx5_0:x",
                                "mlx5_0:0", "mlx5_0:256", "mlx5_0:1:2", "^", "=",
                                "^=", "mlx5_0,^mlx5_1", "=^mlx5_0", "mlx5_0:-1", "mlx5_0:1x"}) {
    Result<HcaFilter> f = parseHcaList(bad);
    ASSERT_FALSE(f.isOk()) << "'" << bad << "' was accepted";
    EXPECT_EQ(f.status().code(), Code::kInvalidArgument) << bad;
    EXPECT_NE(f.status().message().find("LOOM_IB_HCA"), std::string::npos) << f.status().toString();
  }
}

}  // namespace
}  // namespace loom::transport::ibverbs

namespace loom::transport::ibverbs {
namespace {

std::array<uint8_t, 16> ipv4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d};
}
std::array<uint8_t, 16> linkLocal() {
  return {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
}
std::array<uint8_t, 16> global6() {
  return {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
}

TEST(GidIndexTest, AutoPrefersRoceV2WithAnIpv4Address) {
  std::vector<GidEntry> t = {{0, GidType::kRoceV1, linkLocal()},
                             {1, GidType::kRoceV2, linkLocal()},
                             {2, GidType::kRoceV1, ipv4(10, 0, 0, 1)},
                             {3, GidType::kRoceV2, ipv4(10, 0, 0, 1)}};
  EXPECT_EQ(selectGidIndex(t, -1).value(), 3);
  t.pop_back();
  EXPECT_EQ(selectGidIndex(t, -1).value(), 1);  // v2 link-local beats v1
  t.push_back({7, GidType::kRoceV2, global6()});
  EXPECT_EQ(selectGidIndex(t, -1).value(), 7);  // v2 global beats v2 link-local
}

TEST(GidIndexTest, AutoOnInfinibandIsIndexZero) {
  std::vector<GidEntry> t = {{0, GidType::kIb, linkLocal()}, {1, GidType::kIb, global6()}};
  EXPECT_EQ(selectGidIndex(t, -1).value(), 0);
}

TEST(GidIndexTest, ConfiguredIndexIsTakenWhenPresentElseInvalidArgument) {
  std::vector<GidEntry> t = {{0, GidType::kRoceV1, linkLocal()},
                             {3, GidType::kRoceV2, ipv4(10, 0, 0, 1)}};
  EXPECT_EQ(selectGidIndex(t, 0).value(), 0);
  Result<int> bad = selectGidIndex(t, 2);
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("LOOM_IB_GID_INDEX=2"), std::string::npos);
  EXPECT_FALSE(selectGidIndex({}, -1).isOk());
}

TEST(PortRateTest, SpeedAndWidthCodesGiveBytesPerSecond) {
  EXPECT_DOUBLE_EQ(portBytesPerSec(64, 2), 25e9);         // HDR 4x: 200 Gb/s
  EXPECT_DOUBLE_EQ(portBytesPerSec(128, 2), 50e9);        // NDR 4x: 400 Gb/s
  EXPECT_DOUBLE_EQ(portBytesPerSec(32, 2), 12.890625e9);  // EDR 4x: 103.125 Gb/s signalling
  EXPECT_DOUBLE_EQ(portBytesPerSec(1, 1), 2.5e9 / 8);     // SDR 1x
  EXPECT_EQ(portBytesPerSec(3, 2), 0);
  EXPECT_EQ(portBytesPerSec(64, 3), 0);
}

}  // namespace
}  // namespace loom::transport::ibverbs
