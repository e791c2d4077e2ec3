// UniqueId: what every rank of a job must share to find each other and prove membership.
//
// Contents: the rendezvous root's address and port, a 128-bit random secret, and a format
// magic/version. It serialises into the 128 bytes of loomUniqueId and parses back with
// validation (a zeroed, truncated or foreign id is InvalidArgument, not a hang).
//
// The secret never crosses the network: connections prove it with HMAC-SHA-256 over a fresh
// challenge (tcp_store.h, and the transports' handshakes).
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "base/socket.h"
#include "base/status.h"

namespace loom::bootstrap {

inline constexpr size_t kUniqueIdBytes = 128;

struct UniqueId {
  SocketAddress root;
  std::array<uint8_t, 16> secret{};

  void toBytes(uint8_t out[kUniqueIdBytes]) const;
  static Result<UniqueId> fromBytes(const uint8_t in[kUniqueIdBytes]);
  // Hex form for environment variables (LOOM_UNIQUE_ID) and back.
  std::string toHex() const;
  static Result<UniqueId> fromHex(const std::string& hex);
  // A stable 64-bit hash of the whole id (names this job's communicators).
  uint64_t hash() const;
};

}  // namespace loom::bootstrap
