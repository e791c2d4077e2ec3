// libFuzzer target: the socket transport's wire decoding (transports/socket/wire.h) - the data
// header and the three handshake messages - on arbitrary bytes. Decoders must reject what is
// malformed and never read outside their fixed-size input.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "transports/socket/wire.h"

namespace w = loom::transport::socket;

template <size_t N>
std::vector<uint8_t> exactly(const uint8_t* data, size_t size) {
  std::vector<uint8_t> v(N, 0);  // exactly N bytes: ASan flags any read past them
  std::memcpy(v.data(), data, size < N ? size : N);
  return v;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto h = exactly<w::kHeaderBytes>(data, size);
  w::Header header = w::decodeHeader(h.data());
  uint8_t again[w::kHeaderBytes];
  w::encodeHeader(header, again);  // round trip must not crash
  w::Challenge c;
  auto cm = exactly<w::kChallengeMessageBytes>(data, size);
  if (w::decodeChallenge(cm.data(), &c)) {
    uint8_t out[w::kChallengeMessageBytes];
    w::encodeChallenge(c, out);
  }
  w::Proof p;
  auto pm = exactly<w::kProofMessageBytes>(data, size);
  (void)w::decodeProof(pm.data(), &p);
  w::Ack a;
  auto am = exactly<w::kAckMessageBytes>(data, size);
  (void)w::decodeAck(am.data(), &a);
  return 0;
}
