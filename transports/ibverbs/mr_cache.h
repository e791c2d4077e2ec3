// The memory-registration cache of the ibverbs transport.
//
// Registering memory with the HCA (ibv_reg_mr) pins pages and costs tens of microseconds, so
// buffers that a collective uses again and again are registered once. The cache keeps
// page-aligned regions keyed by address range:
//   - acquire(addr, bytes) returns a region that contains [addr, addr + bytes), registering a
//     new page-aligned one when no cached region contains it (overlapping but not containing
//     regions are left alone: the HCA allows several registrations of one page);
//   - every acquire must be paired with a release; a region with references is never evicted;
//   - at most `capacity` regions are kept: registering one more first deregisters the least
//     recently used unreferenced region; when all are in use the cache grows past capacity
//     (correctness first) and shrinks back as they are released;
//   - invalidate(addr, bytes) drops unreferenced regions that overlap a range the owner is about
//     to free (a region still referenced there is a caller bug: InvalidUsage).
//
// The register and deregister operations are callbacks, so tests drive the cache with fakes and
// the transport passes ibv_reg_mr / ibv_dereg_mr.
// Thread-safety: none; one cache per transport, driven by the transport's thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>

#include "base/status.h"

namespace loom::transport::ibverbs {

struct MrKeys {
  uint32_t lkey = 0;
  uint32_t rkey = 0;
  void* handle = nullptr;  // the backend's object (an ibv_mr*), opaque here
};

class MrCache {
 public:
  using RegisterFn = std::function<Result<MrKeys>(uintptr_t addr, size_t bytes)>;
  using DeregisterFn = std::function<void(const MrKeys& keys)>;

  // A reference to a cached region; valid until released.
  struct Ref {
    uintptr_t begin = 0;  // the region (page-aligned)
    size_t bytes = 0;
    MrKeys keys;
  };

  MrCache(size_t capacity, size_t pageBytes, RegisterFn reg, DeregisterFn dereg);
  // Deregisters every region (referenced or not: the owner is going away).
  ~MrCache();
  MrCache(const MrCache&) = delete;
  MrCache& operator=(const MrCache&) = delete;

  // InvalidArgument for a null address or a range that wraps; the register callback's error
  // otherwise. bytes 0 is allowed (one page is registered).
  Result<Ref> acquire(const void* addr, size_t bytes);
  // InvalidUsage when ref is not a referenced region of this cache.
  Status release(const Ref& ref);
  Status invalidate(const void* addr, size_t bytes);

  size_t size() const { return regions_.size(); }
  size_t capacity() const { return capacity_; }
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }
  // References held on the region that starts at begin (0 when there is none).
  int refs(uintptr_t begin) const;

 private:
  struct Region {
    size_t bytes = 0;
    MrKeys keys;
    int refs = 0;
    std::list<uintptr_t>::iterator lru;  // position in lru_ while refs == 0
    bool inLru = false;
  };
  using Map = std::map<uintptr_t, Region>;

  Map::iterator findContaining(uintptr_t begin, uintptr_t end);
  void touch(Map::iterator it);
  // Deregisters least recently used unreferenced regions until at most limit remain.
  void evictDownTo(size_t limit);
  void drop(Map::iterator it);

  const size_t capacity_;
  const size_t pageBytes_;
  RegisterFn register_;
  DeregisterFn deregister_;
  Map regions_;                // by start address
  std::list<uintptr_t> lru_;   // unreferenced regions, least recently used first
  size_t maxRegionBytes_ = 0;  // bounds the backwards search in findContaining
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
};

}  // namespace loom::transport::ibverbs
