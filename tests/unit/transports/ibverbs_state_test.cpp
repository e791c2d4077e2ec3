// The ibverbs connection state machine (transports/ibverbs/connection_state.h).
#include <gtest/gtest.h>

#include "transports/ibverbs/connection_state.h"

namespace loom::transport::ibverbs {
namespace {

ConnectionState fresh() {
  return ConnectionState("rank 3 (host b)", "mlx5_0:1");
}

TEST(ConnectionStateTest, PhasesMoveForwardOneAtATimeToOpen) {
  ConnectionState s = fresh();
  EXPECT_EQ(s.phase(), Phase::kInit);
  for (Phase p : {Phase::kExchange, Phase::kRtr, Phase::kRts, Phase::kOpen}) {
    EXPECT_TRUE(s.usable().isOk());
    ASSERT_TRUE(s.advance(p).isOk()) << phaseName(p);
  }
  EXPECT_TRUE(s.open());
}

TEST(ConnectionStateTest, SkippingOrGoingBackIsAnInternalError) {
  ConnectionState s = fresh();
  EXPECT_EQ(s.advance(Phase::kRtr).code(), Code::kInternal);  // skips the exchange
  ASSERT_TRUE(s.advance(Phase::kExchange).isOk());
  EXPECT_EQ(s.advance(Phase::kExchange).code(), Code::kInternal);
  EXPECT_EQ(s.advance(Phase::kInit).code(), Code::kInternal);
  Status st = s.advance(Phase::kOpen);
  EXPECT_NE(st.message().find("exchange -> open"), std::string::npos) << st.toString();
  // advance() never reaches the terminal phases: close() and fail() do.
  ConnectionState t = fresh();
  for (Phase p : {Phase::kExchange, Phase::kRtr, Phase::kRts, Phase::kOpen})
    ASSERT_TRUE(t.advance(p).isOk());
  EXPECT_EQ(t.advance(Phase::kClosed).code(), Code::kInternal);
}

TEST(ConnectionStateTest, FailureIsStickyRemoteErrorNamingPeerPortAndPhase) {
  ConnectionState s = fresh();
  ASSERT_TRUE(s.advance(Phase::kExchange).isOk());
  ASSERT_TRUE(s.advance(Phase::kRtr).isOk());
  Status e = s.fail(systemError("ibv_modify_qp(RTS): Invalid argument (errno 22)"));
  EXPECT_EQ(e.code(), Code::kRemoteError);
  for (const char* part : {"rank 3 (host b)", "mlx5_0:1", "RTR", "ibv_modify_qp(RTS)"})
    EXPECT_NE(e.message().find(part), std::string::npos) << part << " in " << e.toString();
  // Later errors do not replace the first.
  Status again = s.fail(remoteError("port went down"));
  EXPECT_EQ(again.message(), e.message());
  EXPECT_EQ(s.usable().message(), e.message());
  EXPECT_EQ(s.phase(), Phase::kFailed);
  EXPECT_TRUE(s.terminal());
  EXPECT_EQ(s.advance(Phase::kRts).code(), Code::kInternal);
  s.close();  // a failed connection stays failed
  EXPECT_EQ(s.phase(), Phase::kFailed);
}

TEST(ConnectionStateTest, ClosedRefusesWorkAndIgnoresLaterFailures) {
  ConnectionState s = fresh();
  s.close();
  EXPECT_EQ(s.usable().code(), Code::kInvalidUsage);
  EXPECT_TRUE(s.fail(remoteError("late")).isOk());
  EXPECT_EQ(s.phase(), Phase::kClosed);
}

TEST(ConnectionStateTest, PortDownWhileOpenNamesThePort) {
  ConnectionState s = fresh();
  for (Phase p : {Phase::kExchange, Phase::kRtr, Phase::kRts, Phase::kOpen})
    ASSERT_TRUE(s.advance(p).isOk());
  Status e = s.fail(remoteError("port mlx5_0:1 went down (IBV_EVENT_PORT_ERR)"));
  EXPECT_NE(e.message().find("connection to rank 3 (host b) on mlx5_0:1 (open)"), std::string::npos)
      << e.toString();
}

}  // namespace
}  // namespace loom::transport::ibverbs
