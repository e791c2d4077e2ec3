// The TCP store's wire protocol, shared by TcpStoreServer, TcpStoreClient and the tests that
// speak it by hand (garbage, oversized lengths). Everything is big-endian.
//
// Handshake (mutual, the secret never crosses the wire):
//   server -> client  ServerHello  "LOOMSTS1" | challenge[16]                          24 bytes
//   client -> server  ClientHello  "LOOMSTC1" | clientChallenge[16] | rank i32 |
//                                  nranks i32 | proof[32]                               64 bytes
//       proof = HMAC-SHA-256(secret, "loom-store-client" | challenge | clientChallenge |
//                                    rank | nranks)
//   server -> client  Welcome      proof[32] | code u32 | nranks i32                   40 bytes
//       proof = HMAC-SHA-256(secret, "loom-store-server" | clientChallenge | challenge |
//                                    code | nranks)
//   A client whose proof is wrong gets no Welcome: the server closes the connection. A Welcome
//   with a non-zero code (WelcomeCode) is followed by a close; nranks is then the job size the
//   root already knows.
//
// Frames after the handshake: u32 bodyLength | body.
//   request body  op u8 | id u64 | keyLength u32 | key | value (the rest of the body)
//   reply body    status u8 | id u64 | payload (the rest of the body)
// A reply echoes its request's id; GET replies are deferred until the key exists, so a client
// may see replies out of request order and must match them by id. CANCEL has no reply.
// Limits are checked on the length fields, before anything is allocated.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/sha256.h"
#include "base/status.h"

namespace loom::bootstrap::wire {

using Secret = std::array<uint8_t, 16>;
using Nonce = std::array<uint8_t, 16>;

inline constexpr size_t kMaxKeyBytes = 4096;
inline constexpr size_t kMaxValueBytes = size_t{64} << 20;
inline constexpr size_t kRequestHeaderBytes = 1 + 8 + 4;
inline constexpr size_t kReplyHeaderBytes = 1 + 8;
inline constexpr size_t kMaxRequestBody = kRequestHeaderBytes + kMaxKeyBytes + kMaxValueBytes;
inline constexpr size_t kMaxReplyBody = kReplyHeaderBytes + kMaxValueBytes;

inline constexpr char kServerMagic[9] = "LOOMSTS1";
inline constexpr char kClientMagic[9] = "LOOMSTC1";
inline constexpr size_t kServerHelloBytes = 8 + 16;
inline constexpr size_t kClientHelloBytes = 8 + 16 + 4 + 4 + 32;
inline constexpr size_t kWelcomeBytes = 32 + 4 + 4;

enum class Op : uint8_t {
  kSet = 1,
  kGet = 2,     // reply deferred until the key exists
  kTryGet = 3,  // reply now: kOk with the value or kNotFound
  kAdd = 4,     // value: i64 delta; reply payload: i64 new value
  kErasePrefix = 5,
  kCancel = 6,  // forget the pending GET whose id is this request's id; no reply
};

enum class ReplyStatus : uint8_t { kOk = 0, kNotFound = 1, kError = 2 };

enum class WelcomeCode : uint32_t { kOk = 0, kNranksMismatch = 1, kBadRank = 2 };

void putU32(uint8_t* p, uint32_t v);
void putU64(uint8_t* p, uint64_t v);
uint32_t getU32(const uint8_t* p);
uint64_t getU64(const uint8_t* p);

Digest clientProof(const Secret& secret, const Nonce& challenge, const Nonce& clientChallenge,
                   int32_t rank, int32_t nranks);
Digest serverProof(const Secret& secret, const Nonce& clientChallenge, const Nonce& challenge,
                   uint32_t code, int32_t nranks);

std::array<uint8_t, kServerHelloBytes> encodeServerHello(const Nonce& challenge);
std::array<uint8_t, kClientHelloBytes> encodeClientHello(const Secret& secret,
                                                         const Nonce& challenge,
                                                         const Nonce& clientChallenge, int32_t rank,
                                                         int32_t nranks);
std::array<uint8_t, kWelcomeBytes> encodeWelcome(const Secret& secret, const Nonce& clientChallenge,
                                                 const Nonce& challenge, WelcomeCode code,
                                                 int32_t nranks);

// Appends one whole frame (length prefix included) to *out.
void appendRequest(std::vector<uint8_t>* out, Op op, uint64_t id, std::string_view key,
                   const uint8_t* value, size_t valueBytes);
void appendReply(std::vector<uint8_t>* out, ReplyStatus status, uint64_t id, const uint8_t* payload,
                 size_t payloadBytes);

// A parsed request; key and value point into the body they were parsed from.
struct RequestView {
  Op op;
  uint64_t id;
  std::string_view key;
  const uint8_t* value;
  size_t valueBytes;
};
// Validates op, lengths and the ADD payload; InvalidArgument describes what is wrong.
Result<RequestView> parseRequest(const uint8_t* body, size_t bodyBytes);

}  // namespace loom::bootstrap::wire
