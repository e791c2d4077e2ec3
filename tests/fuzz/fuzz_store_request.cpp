// libFuzzer target: the rendezvous root's request parser (bootstrap/tcp_store_wire.h). Every
// byte a client sends after the handshake goes through parseRequest; whatever it accepts must
// lie inside the body it was given.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "bootstrap/tcp_store_wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto r = loom::bootstrap::wire::parseRequest(data, size);
  if (!r.isOk()) return 0;
  const uint8_t* end = data + size;
  const auto* key = reinterpret_cast<const uint8_t*>(r->key.data());
  if (!r->key.empty() && (key < data || key + r->key.size() > end)) std::abort();
  if (r->valueBytes > 0 && (r->value < data || r->value + r->valueBytes > end)) std::abort();
  return 0;
}
