#include "bootstrap/tcp_store_wire.h"

#include <cstring>

namespace loom::bootstrap::wire {

namespace {

constexpr std::string_view kClientLabel = "loom-store-client";
constexpr std::string_view kServerLabel = "loom-store-server";

template <size_t N>
void append(std::vector<uint8_t>* m, const std::array<uint8_t, N>& a) {
  m->insert(m->end(), a.begin(), a.end());
}
void appendU32(std::vector<uint8_t>* m, uint32_t v) {
  uint8_t b[4];
  putU32(b, v);
  m->insert(m->end(), b, b + 4);
}

}  // namespace

void putU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    p[i] = static_cast<uint8_t>(v >> (8 * (3 - i)));
}
void putU64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    p[i] = static_cast<uint8_t>(v >> (8 * (7 - i)));
}
uint32_t getU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v = v << 8 | p[i];
  return v;
}
uint64_t getU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v = v << 8 | p[i];
  return v;
}

Digest clientProof(const Secret& secret, const Nonce& challenge, const Nonce& clientChallenge,
                   int32_t rank, int32_t nranks) {
  std::vector<uint8_t> m(kClientLabel.begin(), kClientLabel.end());
  append(&m, challenge);
  append(&m, clientChallenge);
  appendU32(&m, static_cast<uint32_t>(rank));
  appendU32(&m, static_cast<uint32_t>(nranks));
  return hmacSha256(secret.data(), secret.size(), m.data(), m.size());
}

Digest serverProof(const Secret& secret, const Nonce& clientChallenge, const Nonce& challenge,
                   uint32_t code, int32_t nranks) {
  std::vector<uint8_t> m(kServerLabel.begin(), kServerLabel.end());
  append(&m, clientChallenge);
  append(&m, challenge);
  appendU32(&m, code);
  appendU32(&m, static_cast<uint32_t>(nranks));
  return hmacSha256(secret.data(), secret.size(), m.data(), m.size());
}

std::array<uint8_t, kServerHelloBytes> encodeServerHello(const Nonce& challenge) {
  std::array<uint8_t, kServerHelloBytes> out{};
  std::memcpy(out.data(), kServerMagic, 8);
  std::memcpy(out.data() + 8, challenge.data(), challenge.size());
  return out;
}

std::array<uint8_t, kClientHelloBytes> encodeClientHello(const Secret& secret,
                                                         const Nonce& challenge,
                                                         const Nonce& clientChallenge, int32_t rank,
                                                         int32_t nranks) {
  std::array<uint8_t, kClientHelloBytes> out{};
  std::memcpy(out.data(), kClientMagic, 8);
  std::memcpy(out.data() + 8, clientChallenge.data(), 16);
  putU32(out.data() + 24, static_cast<uint32_t>(rank));
  putU32(out.data() + 28, static_cast<uint32_t>(nranks));
  Digest proof = clientProof(secret, challenge, clientChallenge, rank, nranks);
  std::memcpy(out.data() + 32, proof.data(), proof.size());
  return out;
}

std::array<uint8_t, kWelcomeBytes> encodeWelcome(const Secret& secret, const Nonce& clientChallenge,
                                                 const Nonce& challenge, WelcomeCode code,
                                                 int32_t nranks) {
  std::array<uint8_t, kWelcomeBytes> out{};
  Digest proof =
      serverProof(secret, clientChallenge, challenge, static_cast<uint32_t>(code), nranks);
  std::memcpy(out.data(), proof.data(), proof.size());
  putU32(out.data() + 32, static_cast<uint32_t>(code));
  putU32(out.data() + 36, static_cast<uint32_t>(nranks));
  return out;
}

void appendRequest(std::vector<uint8_t>* out, Op op, uint64_t id, std::string_view key,
                   const uint8_t* value, size_t valueBytes) {
  size_t body = kRequestHeaderBytes + key.size() + valueBytes;
  size_t at = out->size();
  out->resize(at + 4 + kRequestHeaderBytes);
  uint8_t* p = out->data() + at;
  putU32(p, static_cast<uint32_t>(body));
  p[4] = static_cast<uint8_t>(op);
  putU64(p + 5, id);
  putU32(p + 13, static_cast<uint32_t>(key.size()));
  out->insert(out->end(), key.begin(), key.end());
  if (valueBytes > 0) out->insert(out->end(), value, value + valueBytes);
}

void appendReply(std::vector<uint8_t>* out, ReplyStatus status, uint64_t id, const uint8_t* payload,
                 size_t payloadBytes) {
  size_t at = out->size();
  out->resize(at + 4 + kReplyHeaderBytes);
  uint8_t* p = out->data() + at;
  putU32(p, static_cast<uint32_t>(kReplyHeaderBytes + payloadBytes));
  p[4] = static_cast<uint8_t>(status);
  putU64(p + 5, id);
  if (payloadBytes > 0) out->insert(out->end(), payload, payload + payloadBytes);
}

Result<RequestView> parseRequest(const uint8_t* body, size_t bodyBytes) {
  if (bodyBytes < kRequestHeaderBytes)
    return invalidArgument("request body of " + std::to_string(bodyBytes) +
                           " bytes is shorter than its header");
  RequestView r;
  uint8_t op = body[0];
  if (op < static_cast<uint8_t>(Op::kSet) || op > static_cast<uint8_t>(Op::kCancel))
    return invalidArgument("unknown request op " + std::to_string(op));
  r.op = static_cast<Op>(op);
  r.id = getU64(body + 1);
  uint32_t keyBytes = getU32(body + 9);
  if (keyBytes > kMaxKeyBytes)
    return invalidArgument("key of " + std::to_string(keyBytes) + " bytes exceeds the limit of " +
                           std::to_string(kMaxKeyBytes));
  if (keyBytes > bodyBytes - kRequestHeaderBytes)
    return invalidArgument("key length " + std::to_string(keyBytes) + " overruns the body");
  r.key = std::string_view(reinterpret_cast<const char*>(body + kRequestHeaderBytes), keyBytes);
  r.value = body + kRequestHeaderBytes + keyBytes;
  r.valueBytes = bodyBytes - kRequestHeaderBytes - keyBytes;
  if (r.valueBytes > kMaxValueBytes)
    return invalidArgument("value of " + std::to_string(r.valueBytes) +
                           " bytes exceeds the limit of " + std::to_string(kMaxValueBytes));
  if (r.op == Op::kAdd && r.valueBytes != 8)
    return invalidArgument("ADD carries " + std::to_string(r.valueBytes) + " bytes, not 8");
  if (r.op != Op::kSet && r.op != Op::kAdd && r.valueBytes != 0)
    return invalidArgument("request op " + std::to_string(op) + " carries an unexpected value");
  return r;
}

}  // namespace loom::bootstrap::wire
