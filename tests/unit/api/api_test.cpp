// Bad input (DESIGN.md section 6): every case returns InvalidArgument/InvalidUsage with a
// message that names the problem, and nothing is half-applied (the communicator keeps working).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "base/cuda.h"
#include "loom/loom.h"

namespace {

class ApiTest : public testing::Test {
 protected:
  void SetUp() override {
    loomConfig_t cfg = LOOM_CONFIG_INITIALIZER;
    cfg.transport = "loopback";
    cfg.timeoutMs = 10000;
    ASSERT_EQ(loomCommInitAll(&comm_, 1, nullptr, &cfg), loomSuccess) << loomGetLastError(nullptr);
  }
  void TearDown() override {
    if (comm_) {
      EXPECT_EQ(loomCommDestroy(comm_), loomSuccess);
    }
  }
  // Asserts the code and that the last error mentions `words`.
  void expectError(loomResult_t got, loomResult_t want, const std::string& words) {
    EXPECT_EQ(got, want) << loomGetLastError(comm_);
    EXPECT_NE(std::string(loomGetLastError(comm_)).find(words), std::string::npos)
        << "message: " << loomGetLastError(comm_);
    // The communicator still works afterwards.
    float x = 1, y = 0;
    EXPECT_EQ(loomAllReduce(&x, &y, 1, loomFloat32, loomSum, comm_, nullptr), loomSuccess);
    EXPECT_EQ(y, 1.0f);
  }
  loomComm_t comm_ = nullptr;
  float buf_[64] = {};
  float out_[64] = {};
};

TEST_F(ApiTest, NullBufferWithCountIsInvalidArgument) {
  expectError(loomAllReduce(nullptr, out_, 4, loomFloat32, loomSum, comm_, nullptr),
              loomInvalidArgument, "sendbuff is NULL");
  expectError(loomAllReduce(buf_, nullptr, 4, loomFloat32, loomSum, comm_, nullptr),
              loomInvalidArgument, "recvbuff is NULL");
  expectError(loomSend(nullptr, 4, loomFloat32, 0, comm_, nullptr), loomInvalidArgument,
              "sendbuff is NULL");
}

TEST_F(ApiTest, NullBuffersWithZeroCountAreFine) {
  EXPECT_EQ(loomAllReduce(nullptr, nullptr, 0, loomFloat32, loomSum, comm_, nullptr), loomSuccess);
  EXPECT_EQ(loomAllGather(nullptr, nullptr, 0, loomInt8, comm_, nullptr), loomSuccess);
}

TEST_F(ApiTest, CountOverflowIsInvalidArgument) {
  expectError(loomAllReduce(buf_, out_, SIZE_MAX / 2, loomFloat64, loomSum, comm_, nullptr),
              loomInvalidArgument, "overflows");
}

TEST_F(ApiTest, UnknownDatatypeOrOpIsInvalidArgument) {
  expectError(
      loomAllReduce(buf_, out_, 4, static_cast<loomDataType_t>(42), loomSum, comm_, nullptr),
      loomInvalidArgument, "datatype 42");
  expectError(
      loomAllReduce(buf_, out_, 4, loomFloat32, static_cast<loomRedOp_t>(17), comm_, nullptr),
      loomInvalidArgument, "op 17");
}

TEST_F(ApiTest, RootOrPeerOutOfRangeIsInvalidArgument) {
  expectError(loomBroadcast(buf_, out_, 4, loomFloat32, 1, comm_, nullptr), loomInvalidArgument,
              "root 1 is out of range");
  expectError(loomReduce(buf_, out_, 4, loomFloat32, loomSum, -1, comm_, nullptr),
              loomInvalidArgument, "root -1");
  expectError(loomSend(buf_, 4, loomFloat32, 3, comm_, nullptr), loomInvalidArgument,
              "peer 3 is out of range");
}

TEST_F(ApiTest, OverlappingBuffersThatAreNotInPlaceAreInvalidArgument) {
  expectError(loomAllReduce(buf_, buf_ + 1, 4, loomFloat32, loomSum, comm_, nullptr),
              loomInvalidArgument, "overlap");
}

// With no usable GPU a stream is InvalidUsage (nothing could run on it); with one, host
// buffers with a stream are InvalidArgument. Either way the message names the stream.
TEST_F(ApiTest, StreamWithHostBuffersIsRejected) {
  int fake;
  expectError(loomAllReduce(buf_, out_, 4, loomFloat32, loomSum, comm_, &fake),
              loom::cuda::available() ? loomInvalidArgument : loomInvalidUsage, "stream");
}

TEST_F(ApiTest, PreMulSumOpIsBoundToItsDatatype) {
  float s = 2;
  loomRedOp_t op;
  ASSERT_EQ(loomRedOpCreatePreMulSum(&op, &s, loomFloat32, loomScalarHostImmediate, comm_),
            loomSuccess);
  expectError(loomAllReduce(buf_, out_, 4, loomFloat64, op, comm_, nullptr), loomInvalidArgument,
              "created for float");
  buf_[0] = 3;
  ASSERT_EQ(loomAllReduce(buf_, out_, 1, loomFloat32, op, comm_, nullptr), loomSuccess);
  EXPECT_EQ(out_[0], 6.0f);
  EXPECT_EQ(loomRedOpDestroy(op, comm_), loomSuccess);
  expectError(loomRedOpDestroy(op, comm_), loomInvalidArgument, "not a PreMulSum op");
}

TEST_F(ApiTest, DestroyedCommunicatorIsInvalidArgument) {
  loomComm_t c;
  loomConfig_t cfg = LOOM_CONFIG_INITIALIZER;
  cfg.transport = "loopback";
  ASSERT_EQ(loomCommInitAll(&c, 1, nullptr, &cfg), loomSuccess);
  ASSERT_EQ(loomCommDestroy(c), loomSuccess);
  EXPECT_EQ(loomAllReduce(buf_, out_, 4, loomFloat32, loomSum, c, nullptr), loomInvalidArgument);
  EXPECT_NE(std::string(loomGetLastError(nullptr)).find("not a live communicator"),
            std::string::npos);
  EXPECT_EQ(loomCommDestroy(c), loomInvalidArgument);
  EXPECT_EQ(loomAllReduce(buf_, out_, 4, loomFloat32, loomSum, nullptr, nullptr),
            loomInvalidArgument);
}

TEST_F(ApiTest, BadSplitColorIsInvalidArgument) {
  loomComm_t sub;
  expectError(loomCommSplit(comm_, -5, 0, &sub, nullptr), loomInvalidArgument, "color -5");
}

TEST_F(ApiTest, PredictTimeGrowsWithSizeAndChecksItsArguments) {
  loomComm_t comms[4];
  loomConfig_t cfg = LOOM_CONFIG_INITIALIZER;
  cfg.transport = "loopback";
  ASSERT_EQ(loomCommInitAll(comms, 4, nullptr, &cfg), loomSuccess) << loomGetLastError(nullptr);
  double small = -1, large = -1, none = -1;
  EXPECT_EQ(loomCommPredictTime(comms[1], loomCollAllReduce, 16, loomFloat32, 0, &small),
            loomSuccess);
  EXPECT_EQ(loomCommPredictTime(comms[1], loomCollAllReduce, 1 << 22, loomFloat32, 0, &large),
            loomSuccess);
  EXPECT_GT(small, 0);
  EXPECT_GT(large, small);
  EXPECT_EQ(loomCommPredictTime(comms[1], loomCollBroadcast, 0, loomFloat32, 2, &none),
            loomSuccess);
  EXPECT_EQ(none, 0);
  double send = -1;
  EXPECT_EQ(loomCommPredictTime(comms[0], loomCollSend, 1024, loomUint8, 3, &send), loomSuccess);
  EXPECT_GT(send, 0);
  EXPECT_EQ(loomCommPredictTime(comms[0], loomCollReduce, 8, loomFloat32, 4, &none),
            loomInvalidArgument);
  EXPECT_EQ(
      loomCommPredictTime(comms[0], static_cast<loomCollective_t>(42), 8, loomFloat32, 0, &none),
      loomInvalidArgument);
  EXPECT_EQ(loomCommPredictTime(comms[0], loomCollAllReduce, 8, loomFloat32, 0, nullptr),
            loomInvalidArgument);
  for (loomComm_t c : comms)
    EXPECT_EQ(loomCommDestroy(c), loomSuccess);
}

// loomGetAlgorithms lists, per collective, the names LOOM_ALGO takes; each one can be forced.
TEST_F(ApiTest, GetAlgorithmsListsTheNamesLoomAlgoTakes) {
  const char* const* names = nullptr;
  int count = 0;
  ASSERT_EQ(loomGetAlgorithms(loomCollAllReduce, &names, &count), loomSuccess);
  std::vector<std::string> allreduce(names, names + count);
  const auto has = [](const std::vector<std::string>& list, const char* name) {
    return std::find(list.begin(), list.end(), name) != list.end();
  };
  for (const char* name : {"ring", "recursive_doubling", "rabenseifner", "double_binary_tree",
                           "one_shot", "two_shot", "hierarchical"})
    EXPECT_TRUE(has(allreduce, name)) << name;
  ASSERT_EQ(loomGetAlgorithms(loomCollAllToAll, &names, &count), loomSuccess);
  const std::vector<std::string> alltoall(names, names + count);
  for (const char* name : {"pairwise", "bruck", "one_shot"})
    EXPECT_TRUE(has(alltoall, name)) << name;
  for (int c = 0; c < loomNumColls; ++c) {
    ASSERT_EQ(loomGetAlgorithms(static_cast<loomCollective_t>(c), &names, &count), loomSuccess);
    EXPECT_GE(count, 1) << c;
  }
  loomComm_t comms[2];
  for (const std::string& name : allreduce) {
    loomConfig_t cfg = LOOM_CONFIG_INITIALIZER;
    cfg.transport = "loopback";
    const std::string algo = "allreduce:" + name;
    cfg.algo = algo.c_str();
    ASSERT_EQ(loomCommInitAll(comms, 2, nullptr, &cfg), loomSuccess) << loomGetLastError(nullptr);
    const char* chosen = nullptr;
    EXPECT_EQ(loomCommChosenAlgorithm(comms[0], loomCollAllReduce, 64, loomFloat32, 0, &chosen),
              loomSuccess);
    EXPECT_EQ(chosen, name);
    for (loomComm_t c : comms)
      EXPECT_EQ(loomCommDestroy(c), loomSuccess);
  }
  EXPECT_EQ(loomGetAlgorithms(static_cast<loomCollective_t>(loomNumColls), &names, &count),
            loomInvalidArgument);
  EXPECT_NE(std::string(loomGetLastError(nullptr)).find("is not a loomCollective_t"),
            std::string::npos);
  EXPECT_EQ(loomGetAlgorithms(loomCollAllReduce, nullptr, &count), loomInvalidArgument);
  EXPECT_EQ(loomGetAlgorithms(loomCollAllReduce, &names, nullptr), loomInvalidArgument);
}

TEST_F(ApiTest, ChosenAlgorithmFollowsTheOverrideAndChecksItsArguments) {
  loomComm_t comms[4];
  loomConfig_t cfg = LOOM_CONFIG_INITIALIZER;
  cfg.transport = "loopback";
  cfg.algo = "allreduce:0-4K@recursive_doubling,4K-inf@ring;alltoall:bruck";
  ASSERT_EQ(loomCommInitAll(comms, 4, nullptr, &cfg), loomSuccess) << loomGetLastError(nullptr);
  const char* name = nullptr;
  ASSERT_EQ(loomCommChosenAlgorithm(comms[2], loomCollAllReduce, 16, loomFloat32, 0, &name),
            loomSuccess);
  EXPECT_STREQ(name, "recursive_doubling");
  ASSERT_EQ(loomCommChosenAlgorithm(comms[2], loomCollAllReduce, 1 << 20, loomFloat32, 0, &name),
            loomSuccess);
  EXPECT_STREQ(name, "ring");
  ASSERT_EQ(loomCommChosenAlgorithm(comms[0], loomCollAllToAll, 64, loomInt8, 0, &name),
            loomSuccess);
  EXPECT_STREQ(name, "bruck");
  // Without an override the choice is one of the collective's algorithms.
  ASSERT_EQ(loomCommChosenAlgorithm(comms[1], loomCollBroadcast, 4096, loomFloat32, 3, &name),
            loomSuccess);
  const std::string bcast = name;
  EXPECT_TRUE(bcast == "binomial" || bcast == "chain" || bcast == "double_binary_tree" ||
              bcast == "scatter_allgather" || bcast == "one_shot")
      << bcast;
  const auto expectInvalid = [&](loomResult_t got, const std::string& words) {
    EXPECT_EQ(got, loomInvalidArgument);
    const std::string message = loomGetLastError(comms[0]);
    EXPECT_NE(message.find(words), std::string::npos) << message;
  };
  expectInvalid(loomCommChosenAlgorithm(comms[0], loomCollBroadcast, 8, loomFloat32, 4, &name),
                "root/peer 4");
  expectInvalid(loomCommChosenAlgorithm(comms[0], loomCollAllReduce, 8,
                                        static_cast<loomDataType_t>(99), 0, &name),
                "datatype 99");
  expectInvalid(loomCommChosenAlgorithm(comms[0], loomCollAllReduce, 8, loomFloat32, 0, nullptr),
                "algorithm is NULL");
  for (loomComm_t c : comms)
    EXPECT_EQ(loomCommDestroy(c), loomSuccess);
}

TEST(InitTest, NranksAndRankAreChecked) {
  loomUniqueId id;
  std::memset(&id, 0, sizeof(id));
  loomComm_t c;
  EXPECT_EQ(loomCommInitRank(&c, 0, id, 0), loomInvalidArgument);
  EXPECT_NE(std::string(loomGetLastError(nullptr)).find("nranks must be positive"),
            std::string::npos);
  EXPECT_EQ(loomCommInitRank(&c, 2, id, 2), loomInvalidArgument);
  EXPECT_NE(std::string(loomGetLastError(nullptr)).find("rank 2 is out of range"),
            std::string::npos);
  EXPECT_EQ(loomCommInitAll(&c, -1, nullptr, nullptr), loomInvalidArgument);
}

TEST(InitTest, GarbageUniqueIdIsInvalidArgument) {
  loomUniqueId id;
  std::memset(&id, 0x5a, sizeof(id));
  loomComm_t c;
  EXPECT_EQ(loomCommInitRank(&c, 2, id, 0), loomInvalidArgument);
  EXPECT_NE(std::string(loomGetLastError(nullptr)).find("unique id"), std::string::npos)
      << loomGetLastError(nullptr);
}

TEST(InitTest, StaleUniqueIdFailsWithinTheTimeout) {
  // An id whose root is gone: create one, let its root exit (a rank joins and leaves), reuse it.
  loomUniqueId id;
  ASSERT_EQ(loomGetUniqueId(&id), loomSuccess);
  loomConfig_t cfg = LOOM_CONFIG_INITIALIZER;
  cfg.timeoutMs = 5000;
  loomComm_t c;
  ASSERT_EQ(loomCommInitRankConfig(&c, 1, id, 0, &cfg), loomSuccess) << loomGetLastError(nullptr);
  ASSERT_EQ(loomCommDestroy(c), loomSuccess);
  cfg.timeoutMs = 1500;
  loomResult_t r = loomCommInitRankConfig(&c, 1, id, 0, &cfg);
  EXPECT_NE(r, loomSuccess);
  EXPECT_TRUE(r == loomTimeout || r == loomInvalidUsage || r == loomRemoteError ||
              r == loomSystemError)
      << r;
  EXPECT_NE(std::string(loomGetLastError(nullptr)).size(), 0u);
}

TEST(InitTest, ConfigWithoutInitializerIsRejected) {
  loomConfig_t cfg;
  std::memset(&cfg, 0, sizeof(cfg));
  loomComm_t c;
  EXPECT_EQ(loomCommInitAll(&c, 1, nullptr, &cfg), loomInvalidArgument);
  EXPECT_NE(std::string(loomGetLastError(nullptr)).find("LOOM_CONFIG_INITIALIZER"),
            std::string::npos);
}

TEST(ErrorStringTest, EveryCodeHasAString) {
  for (int r = 0; r < loomNumResults; ++r)
    EXPECT_STRNE(loomGetErrorString(static_cast<loomResult_t>(r)), "unknown result code");
}

}  // namespace
