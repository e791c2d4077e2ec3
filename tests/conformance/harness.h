// Shared pieces of the transport conformance suite: ranks as objects of one process, helpers
// to connect them and to drive progress with a deadline, and the test fixture parameterised by
// transport name. Every suite is instantiated over transportNames(), so a backend that is built
// into the library is tested without touching this suite.
//
// Every wait here has a deadline (kWaitMs); sockets use 127.0.0.1 only.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/config.h"
#include "base/doorbell.h"
#include "base/status.h"
#include "base/time.h"
#include "transports/transport.h"

namespace loom::transport::testing {

// Deadline for any single wait in a test.
constexpr int64_t kWaitMs = 20000;

// One rank: its config, doorbell, context and transport. Not copyable (the context points
// into it).
struct RankState {
  Config config;
  std::shared_ptr<Doorbell> doorbell;
  TransportContext context;
  std::unique_ptr<Transport> transport;
};

// A fresh commHash for every world, so tests never see each other's connections.
uint64_t freshCommHash();
// The secret all ranks of a test world share.
std::array<uint8_t, 16> testSecret();

// Creates rank `rank` of an nranks world of transport `name`. createRank is safe in a forked
// child (no gtest); makeRank adds a gtest failure when it fails.
Result<std::unique_ptr<RankState>> createRank(const std::string& name, int rank, int nranks,
                                              uint64_t commHash);
std::unique_ptr<RankState> makeRank(const std::string& name, int rank, int nranks,
                                    uint64_t commHash);

// Both halves of one connection.
struct ConnectionPair {
  std::unique_ptr<Connection> a;  // held by rank a, towards rank b
  std::unique_ptr<Connection> b;
};
ConnectionPair connectPair(RankState& a, RankState& b, int lane);

// What one driver progresses: some connections and their transports.
struct Driven {
  std::vector<Connection*> connections;
  std::vector<Transport*> transports;
};

// Progresses everything in `driven` (spinning) until done() is true, an error, or the deadline.
Status driveUntil(const Driven& driven, const std::function<bool()>& done, Deadline deadline);
// Like driveUntil, but sleeps between progress calls the way the runtime does: arm the doorbell,
// check once more, poll its eventfd plus addPollFds(). A lost wakeup shows up as a Timeout.
Status sleepUntil(const Driven& driven, Doorbell& doorbell, const std::function<bool()>& done,
                  Deadline deadline);

// Deterministic payload for message `index` (byte i = f(seed, index, i)).
void fillPattern(uint8_t* data, size_t bytes, uint64_t seed);
// Index of the first byte that differs from fillPattern, or -1.
int64_t firstMismatch(const uint8_t* data, size_t bytes, uint64_t seed);

bool completeAll(const Connection& c);

class TransportTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::string name() const { return GetParam(); }
  // Two ranks of a fresh world.
  void makeWorld(int nranks = 2);
  const Capabilities& caps() const { return ranks_[0]->transport->capabilities(); }

  std::vector<std::unique_ptr<RankState>> ranks_;
};

// For INSTANTIATE_TEST_SUITE_P: every transport built into the library.
std::vector<std::string> allTransports();
// The same transports wrapped in the fault-injecting transport (transports/testing) with a
// benign plan (delays on lane 1): the suite must pass through the wrapper unchanged.
inline constexpr const char* kFaultyPrefix = "faulty_";
std::vector<std::string> faultWrappedTransports();
std::string paramName(const ::testing::TestParamInfo<std::string>& info);

#define LOOM_INSTANTIATE_FOR_ALL_TRANSPORTS(suite)                                           \
  INSTANTIATE_TEST_SUITE_P(AllTransports, suite,                                             \
                           ::testing::ValuesIn(::loom::transport::testing::allTransports()), \
                           ::loom::transport::testing::paramName)

#define LOOM_INSTANTIATE_THROUGH_FAULT_WRAPPER(suite)                            \
  INSTANTIATE_TEST_SUITE_P(                                                      \
      ThroughFaultWrapper, suite,                                                \
      ::testing::ValuesIn(::loom::transport::testing::faultWrappedTransports()), \
      ::loom::transport::testing::paramName)

// Expects a RemoteError whose message contains every string in `mentions`.
void expectRemoteError(const Status& status, const std::vector<std::string>& mentions);

}  // namespace loom::transport::testing
