// Host identity: ranks with equal identities are on one host and may use shared memory.
//
// The identity is hostname + kernel boot id (two machines with one hostname still differ) +
// the network namespace (ranks in different namespaces cannot reach each other's abstract
// Unix sockets, so they are treated as different hosts). LOOM_HOSTID overrides it, which is
// how tests declare several "hosts" on one machine.
#pragma once

#include <cstdint>
#include <string>

namespace loom {

std::string hostName();
// The identity string described above (or the override when non-empty).
std::string hostIdentity(const std::string& override);
// CPUs this process may run on (its affinity mask; at least 1).
int usableCpus();
uint64_t hash64(const void* data, size_t bytes);
inline uint64_t hash64(const std::string& s) {
  return hash64(s.data(), s.size());
}

}  // namespace loom
