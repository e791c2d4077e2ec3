#include "base/host.h"

#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "base/sha256.h"

namespace loom {

std::string hostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
  return buf;
}

std::string hostIdentity(const std::string& override) {
  if (!override.empty()) return "hostid:" + override;
  std::string id = hostName();
  std::ifstream boot("/proc/sys/kernel/random/boot_id");
  std::string bootId;
  if (boot && std::getline(boot, bootId)) id += "/" + bootId;
  struct stat st;
  if (::stat("/proc/self/ns/net", &st) == 0) id += "/netns:" + std::to_string(st.st_ino);
  return id;
}

int usableCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) {
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? static_cast<int>(n) : 1;
  }
  return std::max(1, CPU_COUNT(&set));
}

uint64_t hash64(const void* data, size_t bytes) {
  Sha256 h;
  h.update(data, bytes);
  Digest d = h.finish();
  uint64_t v;
  std::memcpy(&v, d.data(), sizeof(v));
  return v;
}

}  // namespace loom
