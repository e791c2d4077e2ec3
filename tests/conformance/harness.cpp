#include "harness.h"

#include <poll.h>

#include <atomic>
#include <cstdio>
#include <cstring>

#include "transports/testing/fault_transport.h"

namespace loom::transport::testing {

uint64_t freshCommHash() {
  static std::atomic<uint64_t> next{0x10c0000000000000ull};
  return next.fetch_add(1) * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(nowNs());
}

std::array<uint8_t, 16> testSecret() {
  std::array<uint8_t, 16> s{};
  for (size_t i = 0; i < s.size(); ++i)
    s[i] = static_cast<uint8_t>(0xa5 ^ (i * 29));
  return s;
}

Result<std::unique_ptr<RankState>> createRank(const std::string& name, int rank, int nranks,
                                              uint64_t commHash) {
  auto r = std::make_unique<RankState>();
  r->config.socketIfname = "lo";  // 127.0.0.1 only
  r->config.timeoutMs = kWaitMs;
  LOOM_ASSIGN_OR_RETURN(r->doorbell, Doorbell::create());
  r->context.rank = rank;
  r->context.nranks = nranks;
  r->context.commHash = commHash;
  r->context.secret = testSecret();
  r->context.config = &r->config;
  r->context.doorbell = r->doorbell;
  // "faulty_<name>": the transport wrapped in the fault-injecting transport, with a plan that
  // must not change any outcome (lane 1 delayed: reordering across lanes only).
  const bool faulty = name.rfind(kFaultyPrefix, 0) == 0;
  const std::string inner = faulty ? name.substr(std::strlen(kFaultyPrefix)) : name;
  LOOM_ASSIGN_OR_RETURN(r->transport, createTransport(inner, r->context));
  if (faulty) {
    LOOM_ASSIGN_OR_RETURN(fault::FaultPlan plan, fault::FaultPlan::parse("delay:lane=1,ms=2"));
    r->transport = fault::wrapWithFaults(std::move(r->transport), r->context, std::move(plan));
  }
  return r;
}

std::unique_ptr<RankState> makeRank(const std::string& name, int rank, int nranks,
                                    uint64_t commHash) {
  Result<std::unique_ptr<RankState>> r = createRank(name, rank, nranks, commHash);
  EXPECT_TRUE(r.isOk()) << r.status().toString();
  if (!r.isOk()) return nullptr;
  return std::move(r).value();
}

ConnectionPair connectPair(RankState& a, RankState& b, int lane) {
  ConnectionPair p;
  Result<std::unique_ptr<Connection>> ca =
      a.transport->connect(b.context.rank, lane, b.transport->localAddress());
  EXPECT_TRUE(ca.isOk()) << ca.status().toString();
  Result<std::unique_ptr<Connection>> cb =
      b.transport->connect(a.context.rank, lane, a.transport->localAddress());
  EXPECT_TRUE(cb.isOk()) << cb.status().toString();
  if (ca.isOk()) p.a = std::move(ca).value();
  if (cb.isOk()) p.b = std::move(cb).value();
  return p;
}

namespace {

Status progressAll(const Driven& driven) {
  for (Transport* t : driven.transports)
    LOOM_RETURN_IF_ERROR(t->progress());
  for (Connection* c : driven.connections)
    LOOM_RETURN_IF_ERROR(c->progress());
  return Status::ok();
}

}  // namespace

Status driveUntil(const Driven& driven, const std::function<bool()>& done, Deadline deadline) {
  for (;;) {
    LOOM_RETURN_IF_ERROR(progressAll(driven));
    if (done()) return Status::ok();
    if (deadline.expired()) return timeoutError("driveUntil: deadline passed");
  }
}

Status sleepUntil(const Driven& driven, Doorbell& doorbell, const std::function<bool()>& done,
                  Deadline deadline) {
  std::vector<pollfd> fds;
  for (;;) {
    LOOM_RETURN_IF_ERROR(progressAll(driven));
    if (done()) return Status::ok();
    if (deadline.expired()) return timeoutError("sleepUntil: deadline passed (lost wakeup?)");
    doorbell.arm();
    Status s = progressAll(driven);  // the last look before sleeping (doorbell.h)
    if (!s.isOk() || done()) {
      doorbell.disarm();
      return s.isOk() ? Status::ok() : s;
    }
    fds.clear();
    fds.push_back(pollfd{doorbell.eventFd(), POLLIN, 0});
    for (Transport* t : driven.transports)
      t->addPollFds(&fds);
    for (Connection* c : driven.connections)
      c->addPollFds(&fds);
    ::poll(fds.data(), fds.size(), deadline.remainingMs());
    doorbell.disarm();
  }
}

void fillPattern(uint8_t* data, size_t bytes, uint64_t seed) {
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  size_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(data + i, &x, 8);
  }
  for (; i < bytes; ++i)
    data[i] = static_cast<uint8_t>(seed + i);
}

int64_t firstMismatch(const uint8_t* data, size_t bytes, uint64_t seed) {
  std::vector<uint8_t> expect(bytes);
  fillPattern(expect.data(), bytes, seed);
  for (size_t i = 0; i < bytes; ++i)
    if (data[i] != expect[i]) return static_cast<int64_t>(i);
  return -1;
}

bool completeAll(const Connection& c) {
  return c.sendsCompleted() == c.sendsPosted() && c.recvsCompleted() == c.recvsPosted();
}

void TransportTest::makeWorld(int nranks) {
  uint64_t hash = freshCommHash();
  ranks_.clear();
  for (int r = 0; r < nranks; ++r) {
    ranks_.push_back(makeRank(name(), r, nranks, hash));
    ASSERT_NE(ranks_.back(), nullptr);
  }
}

namespace {

// ibverbs is built wherever libibverbs is, but runs only where an RDMA port is active (a NIC,
// or Soft-RoCE: tests/conformance/ibverbs_rxe.sh). Without one it is left out of the suite,
// saying why once; tests/unit/transports/ibverbs_transport_test.cpp checks that failure.
bool usableHere(const std::string& name) {
  if (name != "ibverbs") return true;
  static const bool usable = [] {
    Result<std::unique_ptr<RankState>> r = createRank("ibverbs", 0, 2, freshCommHash());
    if (!r.isOk())
      std::fprintf(stderr, "conformance: ibverbs left out: %s\n", r.status().toString().c_str());
    return r.isOk();
  }();
  return usable;
}

}  // namespace

std::vector<std::string> allTransports() {
  std::vector<std::string> names;
  for (const std::string& n : transportNames())
    if (usableHere(n)) names.push_back(n);
  return names;
}

std::vector<std::string> faultWrappedTransports() {
  std::vector<std::string> names;
  for (const std::string& n : allTransports())
    names.push_back(kFaultyPrefix + n);
  return names;
}

std::string paramName(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

void expectRemoteError(const Status& status, const std::vector<std::string>& mentions) {
  EXPECT_EQ(status.code(), Code::kRemoteError) << status.toString();
  for (const std::string& m : mentions)
    EXPECT_NE(status.message().find(m), std::string::npos)
        << "expected '" << m << "' in: " << status.toString();
}

}  // namespace loom::transport::testing
