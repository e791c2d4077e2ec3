#include "bootstrap/bootstrap.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <thread>
#include <vector>

#include "test_util.h"

namespace loom::bootstrap {
namespace {

using namespace loom::bootstrap::testing;

constexpr int64_t kOpTimeoutMs = 10000;

enum class StoreKind { kInMemory, kTcp };

// One store per rank, as processes would have: one shared InMemoryStore, or one TCP client per
// rank of a loopback root.
class Stores {
 public:
  Stores(StoreKind kind, int nranks) {
    if (kind == StoreKind::kInMemory) {
      auto shared = std::make_shared<InMemoryStore>();
      for (int r = 0; r < nranks; ++r)
        stores_.push_back(shared);
      return;
    }
    Secret secret = randomSecret();
    server_ = startServer(secret);
    for (int r = 0; r < nranks; ++r)
      stores_.push_back(connectOrDie(idFor(*server_, secret), r, nranks));
  }
  std::shared_ptr<Store> operator[](int r) const { return stores_[static_cast<size_t>(r)]; }
  TcpStoreServer* server() { return server_.get(); }

 private:
  std::shared_ptr<TcpStoreServer> server_;
  std::vector<std::shared_ptr<Store>> stores_;
};

// Runs body(rank, bootstrap) on nranks threads.
void runRanks(const Stores& stores, int nranks, int64_t timeoutMs,
              const std::function<void(int, Bootstrap&)>& body, int skipRank = -1,
              const std::atomic<bool>* abortFlag = nullptr) {
  std::vector<std::thread> threads;
  for (int r = 0; r < nranks; ++r) {
    if (r == skipRank) continue;
    threads.emplace_back([&, r] {
      Bootstrap b(stores[r], "job/comm0", r, nranks, timeoutMs, abortFlag);
      body(r, b);
    });
  }
  for (auto& t : threads)
    t.join();
}

Bytes valueOf(int rank, int round) {
  // Sizes differ per rank and round (empty included) so misplaced pieces show.
  return Bytes(static_cast<size_t>((rank * 7 + round * 3) % 11), static_cast<uint8_t>(rank + 1));
}

class BootstrapTest : public ::testing::TestWithParam<std::tuple<StoreKind, int>> {
 protected:
  StoreKind kind() const { return std::get<0>(GetParam()); }
  int nranks() const { return std::get<1>(GetParam()); }
};

TEST_P(BootstrapTest, AllGatherReturnsEveryRanksValueInRankOrder) {
  Stores stores(kind(), nranks());
  runRanks(stores, nranks(), kOpTimeoutMs, [&](int rank, Bootstrap& b) {
    for (int round = 0; round < 3; ++round) {
      Result<std::vector<Bytes>> all = b.allGather(valueOf(rank, round));
      ASSERT_TRUE(all.isOk()) << all.status().toString();
      ASSERT_EQ(all->size(), static_cast<size_t>(nranks()));
      for (int p = 0; p < nranks(); ++p)
        EXPECT_EQ((*all)[p], valueOf(p, round)) << "peer " << p;
    }
  });
}

TEST_P(BootstrapTest, BarrierWaitsForEveryRank) {
  Stores stores(kind(), nranks());
  std::atomic<int> arrived{0};
  runRanks(stores, nranks(), kOpTimeoutMs, [&](int rank, Bootstrap& b) {
    if (rank == nranks() - 1) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ++arrived;
    ASSERT_TRUE(b.barrier().isOk());
    EXPECT_EQ(arrived.load(), nranks());
    ASSERT_TRUE(b.barrier().isOk());
  });
}

TEST_P(BootstrapTest, BroadcastFromEveryRoot) {
  Stores stores(kind(), nranks());
  runRanks(stores, nranks(), kOpTimeoutMs, [&](int rank, Bootstrap& b) {
    for (int root = 0; root < nranks(); ++root) {
      Bytes mine = rank == root ? bytesOf("from " + std::to_string(root)) : Bytes();
      Result<Bytes> got = b.broadcast(mine, root);
      ASSERT_TRUE(got.isOk()) << got.status().toString();
      EXPECT_EQ(stringOf(*got), "from " + std::to_string(root));
    }
  });
}

TEST_P(BootstrapTest, CleanupErasesKeysOnceEveryRankHasLeft) {
  Stores stores(kind(), nranks());
  runRanks(stores, nranks(), kOpTimeoutMs, [&](int rank, Bootstrap& b) {
    ASSERT_TRUE(b.allGather(valueOf(rank, 0)).isOk());
    ASSERT_TRUE(b.broadcast(Bytes{1}, 0).isOk());
    ASSERT_TRUE(b.cleanup().isOk());
  });
  if (nranks() > 1) {
    EXPECT_FALSE(stores[0]->tryGet("job/comm0/ag/1/0")->has_value());
    EXPECT_FALSE(stores[0]->tryGet("job/comm0/bc/1")->has_value());
    EXPECT_FALSE(stores[0]->tryGet("job/comm0/left")->has_value());
  }
}

INSTANTIATE_TEST_SUITE_P(
    StoresAndSizes, BootstrapTest,
    ::testing::Combine(::testing::Values(StoreKind::kInMemory, StoreKind::kTcp),
                       ::testing::Values(1, 2, 3, 5, 8)),
    [](const auto& info) {
      return std::string(std::get<0>(info.param) == StoreKind::kTcp ? "Tcp" : "InMemory") +
             std::to_string(std::get<1>(info.param)) + "Ranks";
    });

class BootstrapFailureTest : public ::testing::TestWithParam<StoreKind> {};

TEST_P(BootstrapFailureTest, AllGatherTimeoutNamesTheMissingRank) {
  Stores stores(GetParam(), 3);
  std::vector<Status> errors(3);
  // Rank 2 never calls: ranks 0 and 1 must time out naming it.
  runRanks(
      stores, 3, 1000,
      [&](int rank, Bootstrap& b) {
        errors[static_cast<size_t>(rank)] = b.allGather(Bytes{1}).takeStatus();
      },
      /*skipRank=*/2);
  for (int r = 0; r < 2; ++r) {
    const Status& s = errors[static_cast<size_t>(r)];
    EXPECT_EQ(s.code(), Code::kTimeout) << s.toString();
    EXPECT_NE(s.message().find("allGather #1: rank 2 did not arrive within 1000 ms"),
              std::string::npos)
        << s.toString();
  }
}

TEST_P(BootstrapFailureTest, BarrierTimeoutNamesSeveralMissingRanks) {
  Stores stores(GetParam(), 5);
  std::vector<std::thread> threads;
  std::vector<Status> errors(2);
  for (int r : {0, 1})
    threads.emplace_back([&, r] {
      Bootstrap b(stores[r], "p", r, 5, 1000);
      errors[static_cast<size_t>(r)] = b.barrier();
    });
  for (auto& t : threads)
    t.join();
  for (const Status& s : errors) {
    EXPECT_EQ(s.code(), Code::kTimeout);
    EXPECT_NE(s.message().find("barrier #1: ranks 2, 3, 4 did not arrive"), std::string::npos)
        << s.toString();
  }
}

TEST_P(BootstrapFailureTest, BroadcastTimeoutNamesTheRoot) {
  Stores stores(GetParam(), 2);
  Bootstrap b(stores[1], "p", 1, 2, 200);
  Status s = b.broadcast(Bytes(), 0).takeStatus();
  EXPECT_EQ(s.code(), Code::kTimeout);
  EXPECT_NE(s.message().find("broadcast #1: root rank 0 did not arrive"), std::string::npos)
      << s.toString();
}

TEST_P(BootstrapFailureTest, AbortFlagUnblocksAllGather) {
  Stores stores(GetParam(), 2);
  std::atomic<bool> abort{false};
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    abort = true;
  });
  Bootstrap b(stores[1], "p", 1, 2, 10000, &abort);
  Status s = b.allGather(Bytes{1}).takeStatus();
  t.join();
  EXPECT_EQ(s.code(), Code::kAborted) << s.toString();
}

INSTANTIATE_TEST_SUITE_P(Stores, BootstrapFailureTest,
                         ::testing::Values(StoreKind::kInMemory, StoreKind::kTcp),
                         [](const auto& info) {
                           return std::string(info.param == StoreKind::kTcp ? "Tcp" : "InMemory");
                         });

TEST(BootstrapTcpTest, RootGoingAwayDuringAllGatherIsRemoteError) {
  Stores stores(StoreKind::kTcp, 2);
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    stores.server()->stop();
  });
  Bootstrap b(stores[1], "p", 1, 2, 10000);
  Status s = b.allGather(Bytes{1}).takeStatus();
  stopper.join();
  EXPECT_EQ(s.code(), Code::kRemoteError) << s.toString();
  EXPECT_NE(s.message().find("allGather #1"), std::string::npos);
  EXPECT_NE(s.message().find(stores.server()->address().toString()), std::string::npos);
}

TEST(BootstrapTest, BroadcastRejectsRootOutsideTheJob) {
  auto store = std::make_shared<InMemoryStore>();
  Bootstrap b(store, "p", 0, 2, 100);
  EXPECT_EQ(b.broadcast(Bytes(), 2).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(b.broadcast(Bytes(), -1).status().code(), Code::kInvalidArgument);
}

TEST(BootstrapTest, FormatRanksReadsNaturally) {
  EXPECT_EQ(formatRanks({3}), "rank 3");
  EXPECT_EQ(formatRanks({2, 5}), "ranks 2, 5");
}

}  // namespace
}  // namespace loom::bootstrap
