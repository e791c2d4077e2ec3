#include "base/config.h"

#include <gtest/gtest.h>

#include "base/log.h"

namespace loom {
namespace {

MapEnvironment env(std::map<std::string, std::string> vars) {
  return MapEnvironment(std::move(vars));
}

TEST(ConfigTest, DefaultsComeFromTheTable) {
  Result<Config> c = Config::fromEnvironment(env({}));
  ASSERT_TRUE(c.isOk()) << c.status().toString();
  for (const ConfigVar& v : configTable())
    EXPECT_EQ(*c->valueOf(v.name), v.defaultValue) << v.name;
}

TEST(ConfigTest, ParsesEveryType) {
  Result<Config> c = Config::fromEnvironment(MapEnvironment(
      {{"LOOM_TIMEOUT_MS", "1500"}, {"LOOM_TRANSPORT", "socket"}, {"LOOM_SHM_DISABLE", "yes"}}));
  ASSERT_TRUE(c.isOk()) << c.status().toString();
  EXPECT_EQ(c->timeoutMs, 1500);
  EXPECT_EQ(c->transport, "socket");
  EXPECT_TRUE(c->shmDisable);
}

TEST(ConfigTest, BadValueNamesTheVariable) {
  Result<Config> c = Config::fromEnvironment(env({{"LOOM_TIMEOUT_MS", "soon"}}));
  ASSERT_FALSE(c.isOk());
  EXPECT_EQ(c.status().code(), Code::kInvalidArgument);
  EXPECT_NE(c.status().message().find("LOOM_TIMEOUT_MS"), std::string::npos);
  Result<Config> d = Config::fromEnvironment(env({{"LOOM_SHM_DISABLE", "maybe"}}));
  ASSERT_FALSE(d.isOk());
  EXPECT_NE(d.status().message().find("LOOM_SHM_DISABLE"), std::string::npos);
}

TEST(ConfigTest, RejectsOutOfRangeValues) {
  EXPECT_FALSE(Config::fromEnvironment(env({{"LOOM_TIMEOUT_MS", "0"}})).isOk());
  EXPECT_FALSE(Config::fromEnvironment(env({{"LOOM_SLICE_BYTES", "12"}})).isOk());
  EXPECT_FALSE(Config::fromEnvironment(env({{"LOOM_PIPELINE_DEPTH", "0"}})).isOk());
}

TEST(ConfigTest, SetAndValueOfRoundTripByName) {
  Config c;
  ASSERT_TRUE(c.set("LOOM_SPIN_US", "7").isOk());
  EXPECT_EQ(*c.valueOf("LOOM_SPIN_US"), "7");
  EXPECT_FALSE(c.set("LOOM_NOPE", "1").isOk());
  EXPECT_FALSE(c.valueOf("LOOM_NOPE").has_value());
}

TEST(ConfigTest, TableNamesAreUniqueAndDocumented) {
  std::set<std::string> names;
  for (const ConfigVar& v : configTable()) {
    EXPECT_TRUE(names.insert(v.name).second) << v.name;
    EXPECT_EQ(std::string(v.name).rfind("LOOM_", 0), 0u) << v.name;
    EXPECT_GT(std::string(v.help).size(), 10u) << v.name;
  }
}

TEST(LogTest, SubsystemMaskParsesListsAndExclusion) {
  unsigned mask = 0;
  ASSERT_TRUE(log::parseSubsysMask("INIT,net", &mask));
  EXPECT_EQ(mask, static_cast<unsigned>(Subsys::kInit) | static_cast<unsigned>(Subsys::kNet));
  ASSERT_TRUE(log::parseSubsysMask("^COLL", &mask));
  EXPECT_EQ(mask & static_cast<unsigned>(Subsys::kColl), 0u);
  EXPECT_NE(mask & static_cast<unsigned>(Subsys::kInit), 0u);
  EXPECT_FALSE(log::parseSubsysMask("INIT,BOGUS", &mask));
}

}  // namespace
}  // namespace loom
