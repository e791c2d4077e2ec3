// What the socket transport puts on the wire: the handshake messages and the per-message
// header. Every integer is little-endian, written and read byte by byte, so hosts of any
// endianness agree and no struct padding ever reaches the network.
//
// Handshake (the higher rank accepts, the lower rank connects):
//   accepter -> connector  Challenge {magic, version, 16 random bytes}                  24 B
//   connector -> accepter  Proof     {magic, version, commHash, rank, lane,
//                                     HMAC(secret, "loom-socket" || challenge || commHash
//                                                  || rank || lane)}                    56 B
//   accepter -> connector  Ack       {magic, version, rank, lane,
//                                     HMAC(secret, "loom-socket-ack" || challenge
//                                                  || commHash || rank || lane)}        48 B
// The accepter's Ack proves the secret back, so a connector that reached some other process on
// a recycled port fails instead of talking to a stranger.
//
// Data: each message is a Header {magic, reserved, tag, bytes} followed by `bytes` of payload.
// A Goodbye header (different magic, tag and bytes 0) is the last thing a closing side sends;
// an end of stream without it means the peer died.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "base/sha256.h"

namespace loom::transport::socket {

constexpr uint32_t kHandshakeMagic = 0x4c4f4f4d;  // "LOOM"
constexpr uint32_t kProtocolVersion = 1;
constexpr uint32_t kMessageMagic = 0x6d736721;  // "msg!"
constexpr uint32_t kGoodbyeMagic = 0x62796521;  // "bye!"

constexpr size_t kChallengeBytes = 16;
constexpr size_t kChallengeMessageBytes = 8 + kChallengeBytes;
constexpr size_t kProofMessageBytes = 8 + 8 + 4 + 4 + 32;
constexpr size_t kAckMessageBytes = 8 + 4 + 4 + 32;
constexpr size_t kHeaderBytes = 24;

using Challenge = std::array<uint8_t, kChallengeBytes>;

inline void putU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void putU64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint32_t getU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}
inline uint64_t getU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

struct Header {
  uint32_t magic = kMessageMagic;
  uint64_t tag = 0;
  uint64_t bytes = 0;
};

inline void encodeHeader(const Header& h, uint8_t out[kHeaderBytes]) {
  putU32(out, h.magic);
  putU32(out + 4, 0);
  putU64(out + 8, h.tag);
  putU64(out + 16, h.bytes);
}
inline Header decodeHeader(const uint8_t in[kHeaderBytes]) {
  return Header{getU32(in), getU64(in + 8), getU64(in + 16)};
}

struct Proof {
  uint64_t commHash = 0;
  uint32_t rank = 0;
  uint32_t lane = 0;
  Digest mac{};
};

struct Ack {
  uint32_t rank = 0;
  uint32_t lane = 0;
  Digest mac{};
};

// The two MACs of the handshake (see the header comment).
Digest proofMac(const uint8_t secret[16], const Challenge& challenge, uint64_t commHash,
                uint32_t rank, uint32_t lane);
Digest ackMac(const uint8_t secret[16], const Challenge& challenge, uint64_t commHash,
              uint32_t rank, uint32_t lane);

void encodeChallenge(const Challenge& c, uint8_t out[kChallengeMessageBytes]);
// False when magic or version is wrong.
bool decodeChallenge(const uint8_t in[kChallengeMessageBytes], Challenge* c);
void encodeProof(const Proof& p, uint8_t out[kProofMessageBytes]);
bool decodeProof(const uint8_t in[kProofMessageBytes], Proof* p);
void encodeAck(const Ack& a, uint8_t out[kAckMessageBytes]);
bool decodeAck(const uint8_t in[kAckMessageBytes], Ack* a);

}  // namespace loom::transport::socket
