#include "base/random.h"

#include <sys/random.h>

#include <cerrno>

namespace loom {

Status secureRandom(void* out, size_t bytes) {
  auto* p = static_cast<unsigned char*>(out);
  size_t done = 0;
  while (done < bytes) {
    ssize_t n = getrandom(p + done, bytes - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return systemErrorFromErrno("getrandom", errno);
    }
    done += static_cast<size_t>(n);
  }
  return Status::ok();
}

std::string toHex(const void* data, size_t bytes) {
  static const char kDigits[] = "0123456789abcdef";
  const auto* p = static_cast<const unsigned char*>(data);
  std::string s(bytes * 2, '0');
  for (size_t i = 0; i < bytes; ++i) {
    s[2 * i] = kDigits[p[i] >> 4];
    s[2 * i + 1] = kDigits[p[i] & 15];
  }
  return s;
}

Status fromHex(const std::string& hex, void* out, size_t bytes) {
  if (hex.size() != bytes * 2)
    return invalidArgument("expected " + std::to_string(bytes * 2) + " hex digits, got " +
                           std::to_string(hex.size()));
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  auto* p = static_cast<unsigned char*>(out);
  for (size_t i = 0; i < bytes; ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return invalidArgument("'" + hex + "' is not hexadecimal");
    p[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  return Status::ok();
}

}  // namespace loom
