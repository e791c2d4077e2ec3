#include "transports/loopback/pair.h"

#include <map>
#include <set>
#include <tuple>
#include <utility>

namespace loom::transport::loopback {

namespace {

struct PairKey {
  uint64_t commHash;
  int low;
  int high;
  int lane;
  auto operator<=>(const PairKey&) const = default;
};

struct Registry {
  std::mutex mutex;
  std::set<std::pair<uint64_t, int>> endpoints;
  // Strong references: a pair stays findable until both sides have closed it, so a side that
  // attaches late still learns that its peer has already gone.
  std::map<PairKey, std::shared_ptr<Pair>> pairs;
};

// Leaked on purpose: connections destroyed during static destruction must still find it.
Registry& registry() {
  static Registry* r = new Registry();
  return *r;
}

std::shared_ptr<Pair> createPair(const PairKey& key) {
  auto pair = std::make_shared<Pair>();
  pair->commHash = key.commHash;
  pair->ranks[0] = key.low;
  pair->ranks[1] = key.high;
  pair->lane = key.lane;
  return pair;
}

}  // namespace

Status registerEndpoint(uint64_t commHash, int rank) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (!r.endpoints.emplace(commHash, rank).second)
    return invalidUsage("loopback: rank " + std::to_string(rank) +
                        " of this communicator already has a live loopback transport");
  return Status::ok();
}

void unregisterEndpoint(uint64_t commHash, int rank) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.endpoints.erase({commHash, rank});
}

std::shared_ptr<Pair> attachPair(uint64_t commHash, int rank, int peer, int lane,
                                 DoorbellRef bell) {
  PairKey key{commHash, std::min(rank, peer), std::max(rank, peer), lane};
  int side = rank < peer ? 0 : 1;
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::shared_ptr<Pair>& slot = r.pairs[key];
  std::shared_ptr<Pair> pair = slot;
  if (pair) {
    std::lock_guard<std::mutex> pairLock(pair->mutex);
    if (pair->sides[side].attached) pair.reset();  // a reconnect: start over
  }
  if (!pair) {
    pair = createPair(key);
    slot = pair;
  }
  std::lock_guard<std::mutex> pairLock(pair->mutex);
  pair->sides[side].attached = true;
  pair->sides[side].bell = std::move(bell);
  return pair;
}

void detachPair(const std::shared_ptr<Pair>& pair) {
  PairKey key{pair->commHash, pair->ranks[0], pair->ranks[1], pair->lane};
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.pairs.find(key);
  if (it == r.pairs.end()) return;
  if (it->second != pair) return;  // a newer pair took the slot
  {
    std::lock_guard<std::mutex> pairLock(pair->mutex);
    if (!(pair->sides[0].closed && pair->sides[1].closed)) return;
  }
  r.pairs.erase(it);
}

}  // namespace loom::transport::loopback
