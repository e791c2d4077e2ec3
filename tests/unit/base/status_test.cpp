#include "base/status.h"

#include <gtest/gtest.h>

namespace loom {
namespace {

Result<int> half(int v) {
  if (v % 2) return invalidArgument("odd value " + std::to_string(v));
  return v / 2;
}

Status quarter(int v, int* out) {
  LOOM_ASSIGN_OR_RETURN(int h, half(v));
  LOOM_ASSIGN_OR_RETURN(*out, half(h));
  return Status::ok();
}

TEST(StatusTest, OkIsCheapAndPrintsOk) {
  Status s;
  EXPECT_TRUE(s.isOk());
  EXPECT_EQ(s.code(), Code::kOk);
  EXPECT_EQ(s.toString(), "OK");
  EXPECT_TRUE(s.message().empty());
}

TEST(StatusTest, ErrorCarriesCodeAndMessage) {
  Status s = remoteError("rank 3 closed the connection");
  EXPECT_FALSE(s.isOk());
  EXPECT_EQ(s.code(), Code::kRemoteError);
  EXPECT_EQ(s.toString(), "RemoteError: rank 3 closed the connection");
  Status c = s.withContext("allreduce #4");
  EXPECT_EQ(c.message(), "allreduce #4: rank 3 closed the connection");
  EXPECT_EQ(c.code(), Code::kRemoteError);
}

TEST(StatusTest, ErrnoMessageNamesSyscallAndErrno) {
  Status s = systemErrorFromErrno("bind 1.2.3.4:5", EADDRINUSE);
  EXPECT_NE(s.message().find("bind 1.2.3.4:5"), std::string::npos);
  EXPECT_NE(s.message().find("errno 98"), std::string::npos);
}

TEST(StatusTest, MacrosPropagateTheFirstError) {
  int out = 0;
  EXPECT_TRUE(quarter(8, &out).isOk());
  EXPECT_EQ(out, 2);
  Status s = quarter(6, &out);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.message(), "odd value 3");
}

TEST(StatusTest, ResultHoldsMoveOnlyValues) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  ASSERT_TRUE(r.isOk());
  std::unique_ptr<int> v = std::move(r).value();
  EXPECT_EQ(*v, 7);
}

TEST(StatusTest, CodesMatchTheCAbiValues) {
  EXPECT_EQ(static_cast<int>(Code::kInvalidArgument), 4);
  EXPECT_EQ(static_cast<int>(Code::kRemoteError), 6);
  EXPECT_EQ(static_cast<int>(Code::kInProgress), 7);
}

}  // namespace
}  // namespace loom
