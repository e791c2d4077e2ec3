#include <mutex>
#include <unordered_set>

#include "api/handles.h"

namespace loom::api {

namespace {
std::mutex& mu() {
  static std::mutex* m = new std::mutex();
  return *m;
}
std::unordered_set<const loomComm*>& live() {
  static auto* s = new std::unordered_set<const loomComm*>();
  return *s;
}
}  // namespace

void registerComm(loomComm* c) {
  std::lock_guard<std::mutex> lock(mu());
  live().insert(c);
}

void unregisterComm(loomComm* c) {
  std::lock_guard<std::mutex> lock(mu());
  live().erase(c);
}

bool isLive(const loomComm* c) {
  std::lock_guard<std::mutex> lock(mu());
  return live().count(c) > 0 && c->magic == loomComm::kMagic;
}

}  // namespace loom::api
