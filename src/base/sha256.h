// SHA-256 and HMAC-SHA-256 (FIPS 180-4, RFC 2104): the bootstrap's challenge-response proves
// knowledge of a job's secret without sending it. Small, dependency-free, not a hot path.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace loom {

using Digest = std::array<uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t bytes);
  Digest finish();

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buffered_ = 0;
  uint64_t total_ = 0;
};

Digest hmacSha256(const void* key, size_t keyBytes, const void* msg, size_t msgBytes);

// Constant-time comparison (no early exit on the first differing byte).
bool digestEqual(const Digest& a, const Digest& b);

}  // namespace loom
