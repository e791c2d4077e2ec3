#include "base/host.h"

#include <sys/stat.h>
#include <unistd.h>

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

uint64_t hash64(const void* data, size_t bytes) {
  Sha256 h;
  h.update(data, bytes);
  Digest d = h.finish();
  uint64_t v;
  std::memcpy(&v, d.data(), sizeof(v));
  return v;
}

}  // namespace loom
