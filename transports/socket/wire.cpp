#include "transports/socket/wire.h"

#include <cstring>
#include <string_view>

namespace loom::transport::socket {

namespace {

constexpr size_t kSecretBytes = 16;

Digest mac(std::string_view label, const uint8_t secret[kSecretBytes], const Challenge& challenge,
           uint64_t commHash, uint32_t rank, uint32_t lane) {
  uint8_t msg[32 + kChallengeBytes + 16];
  size_t n = 0;
  std::memcpy(msg, label.data(), label.size());
  n += label.size();
  std::memcpy(msg + n, challenge.data(), challenge.size());
  n += challenge.size();
  putU64(msg + n, commHash);
  putU32(msg + n + 8, rank);
  putU32(msg + n + 12, lane);
  n += 16;
  return hmacSha256(secret, kSecretBytes, msg, n);
}

void putPreamble(uint8_t* out) {
  putU32(out, kHandshakeMagic);
  putU32(out + 4, kProtocolVersion);
}

bool checkPreamble(const uint8_t* in) {
  return getU32(in) == kHandshakeMagic && getU32(in + 4) == kProtocolVersion;
}

}  // namespace

Digest proofMac(const uint8_t secret[16], const Challenge& challenge, uint64_t commHash,
                uint32_t rank, uint32_t lane) {
  return mac("loom-socket", secret, challenge, commHash, rank, lane);
}

Digest ackMac(const uint8_t secret[16], const Challenge& challenge, uint64_t commHash,
              uint32_t rank, uint32_t lane) {
  return mac("loom-socket-ack", secret, challenge, commHash, rank, lane);
}

void encodeChallenge(const Challenge& c, uint8_t out[kChallengeMessageBytes]) {
  putPreamble(out);
  std::memcpy(out + 8, c.data(), c.size());
}

bool decodeChallenge(const uint8_t in[kChallengeMessageBytes], Challenge* c) {
  if (!checkPreamble(in)) return false;
  std::memcpy(c->data(), in + 8, c->size());
  return true;
}

void encodeProof(const Proof& p, uint8_t out[kProofMessageBytes]) {
  putPreamble(out);
  putU64(out + 8, p.commHash);
  putU32(out + 16, p.rank);
  putU32(out + 20, p.lane);
  std::memcpy(out + 24, p.mac.data(), p.mac.size());
}

bool decodeProof(const uint8_t in[kProofMessageBytes], Proof* p) {
  if (!checkPreamble(in)) return false;
  p->commHash = getU64(in + 8);
  p->rank = getU32(in + 16);
  p->lane = getU32(in + 20);
  std::memcpy(p->mac.data(), in + 24, p->mac.size());
  return true;
}

void encodeAck(const Ack& a, uint8_t out[kAckMessageBytes]) {
  putPreamble(out);
  putU32(out + 8, a.rank);
  putU32(out + 12, a.lane);
  std::memcpy(out + 16, a.mac.data(), a.mac.size());
}

bool decodeAck(const uint8_t in[kAckMessageBytes], Ack* a) {
  if (!checkPreamble(in)) return false;
  a->rank = getU32(in + 8);
  a->lane = getU32(in + 12);
  std::memcpy(a->mac.data(), in + 16, a->mac.size());
  return true;
}

}  // namespace loom::transport::socket
