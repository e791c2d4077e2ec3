#include <gtest/gtest.h>

#include "topology/cpuset.h"

namespace loom::topo {
namespace {

TEST(TopoCpuSet, ListsParseAndFormat) {
  Result<std::vector<int>> cpus = parseCpuList("0-3,8,10-11\n");
  ASSERT_TRUE(cpus.isOk());
  EXPECT_EQ(*cpus, (std::vector<int>{0, 1, 2, 3, 8, 10, 11}));
  EXPECT_EQ(formatCpuList(*cpus), "0-3,8,10-11");
  EXPECT_EQ(formatCpuList({}), "");
  EXPECT_TRUE(parseCpuList("")->empty());
}

TEST(TopoCpuSet, MasksParseAndFormat) {
  Result<std::vector<int>> cpus = parseCpuMask("00000001,0000000f");
  ASSERT_TRUE(cpus.isOk());
  EXPECT_EQ(*cpus, (std::vector<int>{0, 1, 2, 3, 32}));
  EXPECT_EQ(formatCpuMask(*cpus), "00000001,0000000f");
  EXPECT_EQ(formatCpuMask({}), "00000000");
  EXPECT_EQ(parseCpuMask("0x3").value(), (std::vector<int>{0, 1}));
}

TEST(TopoCpuSet, RejectsMalformedAndHugeSets) {
  for (const char* bad : {"1-", "a", "3-1", "1,,2", "-1", "99999999"})
    EXPECT_FALSE(parseCpuList(bad).isOk()) << bad;
  for (const char* bad : {"", "xyz", "123456789", "1,,2"})
    EXPECT_FALSE(parseCpuMask(bad).isOk()) << bad;
  EXPECT_FALSE(parseCpuList("0-65536").isOk());
}

}  // namespace
}  // namespace loom::topo
