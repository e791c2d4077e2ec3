// Cryptographically secure random bytes (getrandom(2)); used for unique-id secrets and nonces.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/status.h"

namespace loom {

Status secureRandom(void* out, size_t bytes);
// Lower-case hex of bytes, and its inverse (InvalidArgument on a bad digit or length).
std::string toHex(const void* data, size_t bytes);
Status fromHex(const std::string& hex, void* out, size_t bytes);

}  // namespace loom
