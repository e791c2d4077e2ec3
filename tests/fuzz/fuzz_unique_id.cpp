// libFuzzer target: unique ids from untrusted sources (loomCommInitRank's argument, the
// LOOM_UNIQUE_ID variable): fromBytes and fromHex must reject garbage cleanly.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "bootstrap/unique_id.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  uint8_t raw[loom::bootstrap::kUniqueIdBytes] = {};
  std::memcpy(raw, data, size < sizeof(raw) ? size : sizeof(raw));
  auto id = loom::bootstrap::UniqueId::fromBytes(raw);
  if (id.isOk()) {
    uint8_t out[loom::bootstrap::kUniqueIdBytes];
    id->toBytes(out);
  }
  auto hex =
      loom::bootstrap::UniqueId::fromHex(std::string(reinterpret_cast<const char*>(data), size));
  if (hex.isOk()) (void)hex->toHex();
  return 0;
}
