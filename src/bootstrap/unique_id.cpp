#include "bootstrap/unique_id.h"

#include <cctype>
#include <cstring>

#include "base/host.h"
#include "base/random.h"
#include "base/sha256.h"

namespace loom::bootstrap {

namespace {

// The 128-byte layout (all integers big-endian):
//   [0, 8)     magic "LOOMUID1"
//   [8, 12)    format version (kVersion)
//   [12, 32)   root address, SocketAddress wire form
//   [32, 48)   secret
//   [48, 120)  zero padding (reserved for later versions; must be zero in version 1)
//   [120, 128) checksum: the first 8 bytes of SHA-256 over [0, 120)
// The checksum catches an id that was truncated, zeroed or corrupted on its way between
// processes (a broadcast of the wrong buffer is the classic mistake) before anyone connects.
constexpr uint8_t kMagic[8] = {'L', 'O', 'O', 'M', 'U', 'I', 'D', '1'};
constexpr uint32_t kVersion = 1;
constexpr size_t kVersionOffset = 8;
constexpr size_t kAddressOffset = 12;
constexpr size_t kSecretOffset = kAddressOffset + SocketAddress::kWireBytes;
constexpr size_t kPaddingOffset = kSecretOffset + 16;
constexpr size_t kChecksumOffset = kUniqueIdBytes - 8;
static_assert(kPaddingOffset <= kChecksumOffset);

void checksum(const uint8_t* bytes, uint8_t out[8]) {
  Sha256 h;
  h.update(bytes, kChecksumOffset);
  Digest d = h.finish();
  std::memcpy(out, d.data(), 8);
}

bool allZero(const uint8_t* p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; ++i)
    acc |= p[i];
  return acc == 0;
}

}  // namespace

void UniqueId::toBytes(uint8_t out[kUniqueIdBytes]) const {
  std::memset(out, 0, kUniqueIdBytes);
  std::memcpy(out, kMagic, sizeof(kMagic));
  for (int i = 0; i < 4; ++i)
    out[kVersionOffset + i] = static_cast<uint8_t>(kVersion >> (8 * (3 - i)));
  root.toWire(out + kAddressOffset);
  std::memcpy(out + kSecretOffset, secret.data(), secret.size());
  checksum(out, out + kChecksumOffset);
}

Result<UniqueId> UniqueId::fromBytes(const uint8_t in[kUniqueIdBytes]) {
  if (std::memcmp(in, kMagic, sizeof(kMagic)) != 0) {
    if (allZero(in, kUniqueIdBytes))
      return invalidArgument(
          "not a loom unique id: bad magic (the id is all zeros: was it filled by "
          "loomGetUniqueId and shared with every rank?)");
    return invalidArgument("not a loom unique id: bad magic");
  }
  uint8_t sum[8];
  checksum(in, sum);
  if (std::memcmp(sum, in + kChecksumOffset, sizeof(sum)) != 0)
    return invalidArgument("not a loom unique id: checksum mismatch (truncated or corrupted copy)");
  uint32_t version = 0;
  for (int i = 0; i < 4; ++i)
    version = version << 8 | in[kVersionOffset + i];
  if (version != kVersion)
    return invalidArgument("loom unique id has format version " + std::to_string(version) +
                           "; this loom understands version " + std::to_string(kVersion) +
                           " (are all ranks running the same loom?)");
  if (!allZero(in + kPaddingOffset, kChecksumOffset - kPaddingOffset))
    return invalidArgument("not a loom unique id: reserved bytes are not zero");
  UniqueId id;
  Result<SocketAddress> addr = SocketAddress::fromWire(in + kAddressOffset);
  if (!addr.isOk()) return addr.status().withContext("loom unique id");
  if (addr->port() == 0) return invalidArgument("loom unique id: the root address has no port");
  id.root = *addr;
  std::memcpy(id.secret.data(), in + kSecretOffset, id.secret.size());
  return id;
}

std::string UniqueId::toHex() const {
  uint8_t bytes[kUniqueIdBytes];
  toBytes(bytes);
  return loom::toHex(bytes, sizeof(bytes));
}

Result<UniqueId> UniqueId::fromHex(const std::string& hex) {
  // Checked here so that the error never echoes the id (it carries the job's secret).
  if (hex.size() != 2 * kUniqueIdBytes)
    return invalidArgument("loom unique id in hex: expected " + std::to_string(2 * kUniqueIdBytes) +
                           " hex digits, got " + std::to_string(hex.size()));
  for (char c : hex)
    if (!std::isxdigit(static_cast<unsigned char>(c)))
      return invalidArgument("loom unique id in hex: '" + std::string(1, c) +
                             "' is not a hex digit");
  uint8_t bytes[kUniqueIdBytes];
  LOOM_RETURN_IF_ERROR(loom::fromHex(hex, bytes, sizeof(bytes)));
  return fromBytes(bytes);
}

uint64_t UniqueId::hash() const {
  uint8_t bytes[kUniqueIdBytes];
  toBytes(bytes);
  return hash64(bytes, sizeof(bytes));
}

}  // namespace loom::bootstrap
