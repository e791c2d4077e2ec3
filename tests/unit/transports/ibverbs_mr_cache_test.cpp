// The ibverbs registration cache (transports/ibverbs/mr_cache.h) over a fake HCA.
#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "transports/ibverbs/mr_cache.h"

namespace loom::transport::ibverbs {
namespace {

constexpr size_t kPage = 4096;

// Records registrations; keys are a counter, so each registration is recognisable.
struct FakeHca {
  std::map<uint32_t, std::pair<uintptr_t, size_t>> live;  // lkey -> range
  std::vector<uint32_t> deregistered;
  uint32_t next = 1;
  bool failNext = false;

  MrCache make(size_t capacity) {
    return MrCache(
        capacity, kPage,
        [this](uintptr_t addr, size_t bytes) -> Result<MrKeys> {
          if (failNext) {
            failNext = false;
            return systemError("ibv_reg_mr: Cannot allocate memory (errno 12)");
          }
          EXPECT_EQ(addr % kPage, 0u);
          EXPECT_EQ(bytes % kPage, 0u);
          live[next] = {addr, bytes};
          MrKeys k{next, next + 1000, nullptr};
          ++next;
          return k;
        },
        [this](const MrKeys& k) {
          EXPECT_EQ(live.erase(k.lkey), 1u) << "deregistered twice: " << k.lkey;
          deregistered.push_back(k.lkey);
        });
  }
};

const void* at(uintptr_t a) {
  return reinterpret_cast<const void*>(a);
}
constexpr uintptr_t kBase = 0x7f0000000000;

MrCache::Ref acquired(MrCache& cache, uintptr_t addr, size_t bytes) {
  Result<MrCache::Ref> r = cache.acquire(at(addr), bytes);
  EXPECT_TRUE(r.isOk()) << r.status().toString();
  return r.isOk() ? r.value() : MrCache::Ref{};
}

TEST(MrCacheTest, RegistersPageAlignedRangesCoveringTheBuffer) {
  FakeHca hca;
  MrCache cache = hca.make(4);
  MrCache::Ref r = acquired(cache, kBase + 100, 5000);
  EXPECT_EQ(r.begin, kBase);
  EXPECT_EQ(r.bytes, 2 * kPage);
  EXPECT_EQ(r.keys.lkey, 1u);
  EXPECT_EQ(r.keys.rkey, 1001u);
  EXPECT_TRUE(cache.release(r).isOk());
}

TEST(MrCacheTest, ContainedRangesHitTheCachedRegion) {
  FakeHca hca;
  MrCache cache = hca.make(4);
  MrCache::Ref big = acquired(cache, kBase, 16 * kPage);
  MrCache::Ref inner = acquired(cache, kBase + 3 * kPage + 7, 2 * kPage);
  EXPECT_EQ(inner.keys.lkey, big.keys.lkey);
  EXPECT_EQ(cache.hits(), 1u);
  EXPECT_EQ(cache.misses(), 1u);
  EXPECT_EQ(cache.refs(kBase), 2);
  EXPECT_TRUE(cache.release(inner).isOk());
  EXPECT_TRUE(cache.release(big).isOk());
  EXPECT_EQ(cache.refs(kBase), 0);
  EXPECT_EQ(cache.size(), 1u);  // kept for next time
}

TEST(MrCacheTest, OverlappingButNotContainedRangeRegistersAnewAndKeepsTheOld) {
  FakeHca hca;
  MrCache cache = hca.make(4);
  MrCache::Ref a = acquired(cache, kBase, 2 * kPage);
  MrCache::Ref b = acquired(cache, kBase + kPage, 2 * kPage);
  EXPECT_NE(a.keys.lkey, b.keys.lkey);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_TRUE(cache.release(a).isOk());
  EXPECT_TRUE(cache.release(b).isOk());
}

TEST(MrCacheTest, ZeroBytesRegistersOnePage) {
  FakeHca hca;
  MrCache cache = hca.make(2);
  MrCache::Ref r = acquired(cache, kBase + 5, 0);
  EXPECT_EQ(r.bytes, kPage);
  EXPECT_TRUE(cache.release(r).isOk());
}

TEST(MrCacheTest, EvictsLeastRecentlyUsedUnreferencedRegionAtCapacity) {
  FakeHca hca;
  MrCache cache = hca.make(2);
  MrCache::Ref a = acquired(cache, kBase, kPage);
  MrCache::Ref b = acquired(cache, kBase + 10 * kPage, kPage);
  EXPECT_TRUE(cache.release(a).isOk());
  EXPECT_TRUE(cache.release(b).isOk());
  // Use a again: b becomes the least recently used.
  EXPECT_TRUE(cache.release(acquired(cache, kBase, kPage)).isOk());
  MrCache::Ref c = acquired(cache, kBase + 20 * kPage, kPage);
  EXPECT_EQ(hca.deregistered, (std::vector<uint32_t>{b.keys.lkey}));
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_TRUE(cache.release(c).isOk());
}

TEST(MrCacheTest, ReferencedRegionsAreNeverEvictedAndTheCacheShrinksOnRelease) {
  FakeHca hca;
  MrCache cache = hca.make(2);
  std::vector<MrCache::Ref> held;
  for (int i = 0; i < 5; ++i)
    held.push_back(acquired(cache, kBase + static_cast<uintptr_t>(i) * 8 * kPage, kPage));
  EXPECT_EQ(cache.size(), 5u);  // over capacity, all in use
  EXPECT_TRUE(hca.deregistered.empty());
  for (const MrCache::Ref& r : held)
    EXPECT_TRUE(cache.release(r).isOk());
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(hca.deregistered.size(), 3u);
  EXPECT_EQ(hca.deregistered.front(), held[0].keys.lkey);  // least recently used first
}

TEST(MrCacheTest, ReleaseOfAnUnreferencedRegionIsInvalidUsage) {
  FakeHca hca;
  MrCache cache = hca.make(2);
  MrCache::Ref r = acquired(cache, kBase, kPage);
  EXPECT_TRUE(cache.release(r).isOk());
  EXPECT_EQ(cache.release(r).code(), Code::kInvalidUsage);
  EXPECT_EQ(cache.release(MrCache::Ref{kBase + kPage, kPage, {}}).code(), Code::kInvalidUsage);
}

TEST(MrCacheTest, InvalidateDropsIdleOverlappingRegionsAndRefusesBusyOnes) {
  FakeHca hca;
  MrCache cache = hca.make(8);
  MrCache::Ref a = acquired(cache, kBase, 2 * kPage);
  MrCache::Ref b = acquired(cache, kBase + 4 * kPage, kPage);
  EXPECT_TRUE(cache.release(a).isOk());
  EXPECT_TRUE(cache.invalidate(at(kBase + kPage), 10).isOk());
  EXPECT_EQ(hca.deregistered, (std::vector<uint32_t>{a.keys.lkey}));
  EXPECT_EQ(cache.invalidate(at(kBase + 4 * kPage), kPage).code(), Code::kInvalidUsage);
  EXPECT_TRUE(cache.release(b).isOk());
  EXPECT_TRUE(cache.invalidate(at(kBase + 4 * kPage), kPage).isOk());
  EXPECT_EQ(cache.size(), 0u);
}

TEST(MrCacheTest, RegistrationFailureIsReturnedAndLeavesNoEntry) {
  FakeHca hca;
  MrCache cache = hca.make(2);
  hca.failNext = true;
  Result<MrCache::Ref> r = cache.acquire(at(kBase), kPage);
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kSystemError);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_TRUE(cache.release(acquired(cache, kBase, kPage)).isOk());
}

TEST(MrCacheTest, NullOrWrappingRangesAreInvalidArgument) {
  FakeHca hca;
  MrCache cache = hca.make(2);
  EXPECT_EQ(cache.acquire(nullptr, 8).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(cache.acquire(at(UINTPTR_MAX - 100), 4096).status().code(), Code::kInvalidArgument);
}

TEST(MrCacheTest, DestructorDeregistersEverything) {
  FakeHca hca;
  {
    MrCache cache = hca.make(4);
    MrCache::Ref held = acquired(cache, kBase, kPage);
    EXPECT_TRUE(cache.release(acquired(cache, kBase + 8 * kPage, kPage)).isOk());
    (void)held;
  }
  EXPECT_TRUE(hca.live.empty());
  EXPECT_EQ(hca.deregistered.size(), 2u);
}

}  // namespace
}  // namespace loom::transport::ibverbs
