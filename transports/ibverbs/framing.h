// What the ibverbs transport puts on the wire (and in the peer's memory). Little-endian,
// written byte by byte like the socket transport's wire.h, so no struct padding or host byte
// order ever reaches a peer. Every decoder is bounds-checked and turns garbage into a
// RemoteError that names the peer.
//
// Immediate data (32 bits, carried by every RDMA WRITE WITH IMMEDIATE):
//   bits 31..30  kind: 0 packet, 1 rendezvous done, 2 credit return (3 is garbage)
//   packet:      bits 29..20 slot (rings have at most 1024 slots), bits 19..0 the packet's
//                sequence number modulo 2^20 (a consistency check: RC delivers in order)
//   rendezvous:  bits 29..0 the rendezvous id modulo 2^30: the receiver has read that large
//                message (a zero-byte write; the sender's send is complete)
//   credit:      bits 29..0 the number of ring slots the writer freed (at least 1)
//
// Packet (written into one slot of the receiver's eager ring; header then payload):
//   0 magic u32 "ibv!" | 4 type u32 | 8 credits u32 | 12 rdvId u32 | 16 tag u64 | 24 bytes u64 |
//   32 addr u64 | 40 rkey u32 | 44 reserved u32                                            48 B
//   Eager: a whole message, `bytes` of payload after the header.
//   Rts:   "ready to send": a message of `bytes` bytes (too large for a slot) with rendezvous id
//          rdvId waits at the sender in registered memory at addr / rkey; the receiver reads it
//          with RDMA READ once its receive is matched, then writes the rendezvous immediate.
//   credits: slots of the other direction's ring the writer has freed (piggybacked).
// Large messages are pulled by the receiver (RDMA READ) rather than pushed after a
// clear-to-send, so no control packet ever waits for ring credits: a clear-to-send would need a
// credit in a ring that the peer's unmatched messages may hold, which can deadlock two ranks
// sending to each other.
//
// Connection info (exchanged once per connection over the control stream, see
// ibverbs_connection.h), always kConnInfoBytes: magic, version, lid, gid, mtu, the eager ring's
// address, rkey, slots and slot size, the QP count, then kMaxQps (QP number, initial packet
// sequence number) pairs of which those past the count are zero.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace loom::transport::ibverbs {

constexpr uint32_t kMaxSlots = 1024;
constexpr unsigned kSeqBits = 20;
constexpr uint32_t kRdvIdMask = (1u << 30) - 1;
constexpr uint32_t kMaxQps = 16;

enum class ImmKind : uint32_t { kPacket = 0, kRendezvous = 1, kCredit = 2 };

struct Imm {
  ImmKind kind = ImmKind::kPacket;
  uint32_t slot = 0;    // kPacket
  uint32_t seqLow = 0;  // kPacket
  uint32_t value = 0;   // kRendezvous: rdvId; kCredit: count
};

uint32_t packetImm(uint32_t slot, uint64_t seq);
uint32_t rendezvousImm(uint32_t rdvId);
uint32_t creditImm(uint32_t count);
// RemoteError naming `peer` for kind 3, a slot >= slots or a zero credit count.
Result<Imm> decodeImm(uint32_t imm, uint32_t slots, const std::string& peer);

enum class PacketType : uint32_t { kEager = 1, kRts = 2 };
constexpr size_t kPacketHeaderBytes = 48;
constexpr uint32_t kPacketMagic = 0x21766269;  // "ibv!"

struct Packet {
  PacketType type = PacketType::kEager;
  uint32_t credits = 0;
  uint32_t rdvId = 0;
  uint64_t tag = 0;
  uint64_t bytes = 0;
  uint64_t addr = 0;  // kRts: where the message is
  uint32_t rkey = 0;  // kRts
};

void encodePacketHeader(const Packet& p, uint8_t out[kPacketHeaderBytes]);
// slotBytes bounds an eager payload. RemoteError naming `peer` for a bad magic, an unknown
// type, an eager payload that does not fit its slot, or an Rts whose message would fit one.
Result<Packet> decodePacketHeader(const uint8_t* in, size_t slotBytes, const std::string& peer);

struct QpInfo {
  uint32_t qpn = 0;
  uint32_t psn = 0;  // 24 bits
};

struct ConnInfo {
  uint32_t lid = 0;  // 16 bits; 0 on RoCE
  std::array<uint8_t, 16> gid{};
  uint32_t mtu = 0;  // an ibv_mtu enum value (1..5)
  uint64_t ringAddr = 0;
  uint32_t ringRkey = 0;
  uint32_t slots = 0;
  uint32_t slotBytes = 0;
  std::vector<QpInfo> qps;
};

constexpr size_t kConnInfoBytes = 4 * 4 + 16 + 8 + 4 * 4 + 8 * kMaxQps;

// Precondition: 1 <= info.qps.size() <= kMaxQps.
std::vector<uint8_t> encodeConnInfo(const ConnInfo& info);
// RemoteError naming `peer` for a bad magic or version, a message that is not kConnInfoBytes,
// a QP count outside [1, kMaxQps], nonzero unused QP entries, a QP number or psn over 24 bits,
// an mtu outside 1..5 or a ring outside limits.
Result<ConnInfo> decodeConnInfo(const uint8_t* in, size_t bytes, const std::string& peer);

// How the receiver reads a rendezvous message: `bytes` split over nqps queue pairs
// round-robin, in chunks of at most maxChunkBytes (the port's largest message), as even as
// possible. The message is in place when all chunks.size() reads have completed.
struct Chunk {
  uint32_t qp = 0;
  uint64_t offset = 0;
  uint64_t bytes = 0;
};
std::vector<Chunk> planChunks(uint64_t bytes, uint32_t nqps, uint64_t maxChunkBytes);
// chunks.size() of planChunks, without building it.
uint64_t chunkCount(uint64_t bytes, uint32_t nqps, uint64_t maxChunkBytes);

}  // namespace loom::transport::ibverbs
