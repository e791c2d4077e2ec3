#include "transports/ibverbs/mr_cache.h"

#include <algorithm>
#include <string>

#include "base/assert.h"

namespace loom::transport::ibverbs {

MrCache::MrCache(size_t capacity, size_t pageBytes, RegisterFn reg, DeregisterFn dereg)
    : capacity_(capacity),
      pageBytes_(pageBytes),
      register_(std::move(reg)),
      deregister_(std::move(dereg)) {
  LOOM_CHECK(capacity_ > 0, "MrCache capacity must be positive");
  LOOM_CHECK(pageBytes_ > 0 && (pageBytes_ & (pageBytes_ - 1)) == 0,
             "MrCache page size must be a power of two");
}

MrCache::~MrCache() {
  for (auto& [begin, region] : regions_)
    deregister_(region.keys);
}

MrCache::Map::iterator MrCache::findContaining(uintptr_t begin, uintptr_t end) {
  // Regions start at or before begin; only those within maxRegionBytes_ can reach end.
  auto it = regions_.upper_bound(begin);
  while (it != regions_.begin()) {
    --it;
    if (begin - it->first > maxRegionBytes_) break;
    if (it->first + it->second.bytes >= end) return it;
  }
  return regions_.end();
}

void MrCache::touch(Map::iterator it) {
  if (it->second.inLru) lru_.erase(it->second.lru);
  it->second.inLru = false;
}

void MrCache::drop(Map::iterator it) {
  touch(it);
  deregister_(it->second.keys);
  regions_.erase(it);
}

void MrCache::evictDownTo(size_t limit) {
  while (regions_.size() > limit && !lru_.empty())
    drop(regions_.find(lru_.front()));
}

Result<MrCache::Ref> MrCache::acquire(const void* addr, size_t bytes) {
  const auto a = reinterpret_cast<uintptr_t>(addr);
  if (a == 0) return invalidArgument("memory registration of a null address");
  if (a > UINTPTR_MAX - 2 * pageBytes_ || bytes > UINTPTR_MAX - 2 * pageBytes_ - a)
    return invalidArgument("memory registration of " + std::to_string(bytes) +
                           " bytes wraps the address space");
  const uintptr_t begin = a & ~(pageBytes_ - 1);
  const uintptr_t end = (a + std::max<size_t>(bytes, 1) + pageBytes_ - 1) & ~(pageBytes_ - 1);
  auto it = findContaining(begin, end);
  if (it != regions_.end()) {
    ++hits_;
  } else {
    ++misses_;
    evictDownTo(capacity_ - 1);  // room for the new one
    LOOM_ASSIGN_OR_RETURN(MrKeys keys, register_(begin, end - begin));
    Region region;
    region.bytes = end - begin;
    region.keys = keys;
    it = regions_.emplace(begin, region).first;
    maxRegionBytes_ = std::max(maxRegionBytes_, end - begin);
  }
  touch(it);
  ++it->second.refs;
  return Ref{it->first, it->second.bytes, it->second.keys};
}

Status MrCache::release(const Ref& ref) {
  auto it = regions_.find(ref.begin);
  if (it == regions_.end() || it->second.refs <= 0 || it->second.bytes != ref.bytes)
    return invalidUsage("memory registration release of an unreferenced region at 0x" +
                        std::to_string(ref.begin));
  if (--it->second.refs == 0) {
    it->second.lru = lru_.insert(lru_.end(), it->first);
    it->second.inLru = true;
    evictDownTo(capacity_);
  }
  return Status::ok();
}

Status MrCache::invalidate(const void* addr, size_t bytes) {
  const auto begin = reinterpret_cast<uintptr_t>(addr);
  const uintptr_t end = begin + bytes;
  for (auto it = regions_.begin(); it != regions_.end();) {
    const bool overlaps = it->first < end && it->first + it->second.bytes > begin;
    if (!overlaps) {
      ++it;
      continue;
    }
    if (it->second.refs > 0)
      return invalidUsage("memory registration: invalidating a region still in use (" +
                          std::to_string(it->second.refs) + " references)");
    drop(it++);
  }
  return Status::ok();
}

int MrCache::refs(uintptr_t begin) const {
  auto it = regions_.find(begin);
  return it == regions_.end() ? 0 : it->second.refs;
}

}  // namespace loom::transport::ibverbs
