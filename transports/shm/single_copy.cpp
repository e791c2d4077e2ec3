#include "transports/shm/single_copy.h"

#include <sys/uio.h>

#include <cerrno>
#include <mutex>
#include <unordered_map>

#include "base/random.h"

namespace loom::transport::shm {

namespace {

struct Registry {
  std::mutex mutex;
  std::unordered_map<uint64_t, std::weak_ptr<DirectTable>> tables;
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: usable from any destructor
  return *r;
}

}  // namespace

Result<uint64_t> registerDirectTable(std::shared_ptr<DirectTable> table) {
  Registry& r = registry();
  for (;;) {
    uint64_t token = 0;
    LOOM_RETURN_IF_ERROR(secureRandom(&token, sizeof(token)));
    if (token == 0) continue;
    std::lock_guard<std::mutex> lock(r.mutex);
    if (r.tables.emplace(token, table).second) return token;
  }
}

void unregisterDirectTable(uint64_t token) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.tables.erase(token);
}

std::shared_ptr<DirectTable> findDirectTable(uint64_t token) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.tables.find(token);
  return it == r.tables.end() ? nullptr : it->second.lock();
}

bool probeCma(pid_t pid, uint64_t address, uint64_t cookie) {
  uint64_t seen = 0;
  Result<size_t> n = cmaRead(pid, address, &seen, sizeof(seen));
  return n.isOk() && *n == sizeof(seen) && seen == cookie;
}

Result<size_t> cmaRead(pid_t pid, uint64_t remoteAddress, void* dest, size_t bytes) {
  iovec local{dest, bytes};
  iovec remote{reinterpret_cast<void*>(static_cast<uintptr_t>(remoteAddress)), bytes};
  for (;;) {
    ssize_t n = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) return systemErrorFromErrno("process_vm_readv", errno);
  }
}

}  // namespace loom::transport::shm
