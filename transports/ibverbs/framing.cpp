#include "transports/ibverbs/framing.h"

#include <algorithm>

#include "base/assert.h"
#include "base/wire.h"
#include "transports/socket/wire.h"

namespace loom::transport::ibverbs {

using socket::getU32;
using socket::getU64;
using socket::putU32;
using socket::putU64;

namespace {
constexpr uint32_t kConnInfoMagic = 0x71706921;  // "!ipq"
constexpr uint32_t kConnInfoVersion = 1;
constexpr uint32_t kMaxSlotBytes = 1u << 20;

Status garbage(const std::string& peer, const std::string& what) {
  return remoteError("garbage from " + peer + ": " + what);
}
}  // namespace

uint32_t packetImm(uint32_t slot, uint64_t seq) {
  LOOM_CHECK(slot < kMaxSlots, "packet slot out of range");
  return (static_cast<uint32_t>(ImmKind::kPacket) << 30) | (slot << kSeqBits) |
         static_cast<uint32_t>(seq & ((1u << kSeqBits) - 1));
}

uint32_t rendezvousImm(uint32_t rdvId) {
  return (static_cast<uint32_t>(ImmKind::kRendezvous) << 30) | (rdvId & kRdvIdMask);
}

uint32_t creditImm(uint32_t count) {
  LOOM_CHECK(count > 0 && count <= kRdvIdMask, "credit count out of range");
  return (static_cast<uint32_t>(ImmKind::kCredit) << 30) | count;
}

Result<Imm> decodeImm(uint32_t imm, uint32_t slots, const std::string& peer) {
  Imm d;
  const uint32_t kind = imm >> 30;
  const uint32_t low = imm & kRdvIdMask;
  switch (kind) {
    case static_cast<uint32_t>(ImmKind::kPacket):
      d.kind = ImmKind::kPacket;
      d.slot = low >> kSeqBits;
      d.seqLow = low & ((1u << kSeqBits) - 1);
      if (d.slot >= slots)
        return garbage(peer, "immediate names slot " + std::to_string(d.slot) + " of a " +
                                 std::to_string(slots) + "-slot ring");
      return d;
    case static_cast<uint32_t>(ImmKind::kRendezvous):
      d.kind = ImmKind::kRendezvous;
      d.value = low;
      return d;
    case static_cast<uint32_t>(ImmKind::kCredit):
      d.kind = ImmKind::kCredit;
      d.value = low;
      if (low == 0) return garbage(peer, "credit immediate returns 0 credits");
      return d;
    default:
      return garbage(peer, "immediate 0x" + std::to_string(imm) + " has unknown kind 3");
  }
}

void encodePacketHeader(const Packet& p, uint8_t out[kPacketHeaderBytes]) {
  putU32(out, kPacketMagic);
  putU32(out + 4, static_cast<uint32_t>(p.type));
  putU32(out + 8, p.credits);
  putU32(out + 12, p.rdvId);
  putU64(out + 16, p.tag);
  putU64(out + 24, p.bytes);
  putU64(out + 32, p.addr);
  putU32(out + 40, p.rkey);
  putU32(out + 44, 0);
}

Result<Packet> decodePacketHeader(const uint8_t* in, size_t slotBytes, const std::string& peer) {
  if (slotBytes < kPacketHeaderBytes) return internalError("slot smaller than a packet header");
  if (getU32(in) != kPacketMagic) return garbage(peer, "packet without the packet magic");
  Packet p;
  const uint32_t type = getU32(in + 4);
  if (type < static_cast<uint32_t>(PacketType::kEager) ||
      type > static_cast<uint32_t>(PacketType::kRts))
    return garbage(peer, "packet of unknown type " + std::to_string(type));
  p.type = static_cast<PacketType>(type);
  p.credits = getU32(in + 8);
  p.rdvId = getU32(in + 12);
  p.tag = getU64(in + 16);
  p.bytes = getU64(in + 24);
  p.addr = getU64(in + 32);
  p.rkey = getU32(in + 40);
  const uint64_t room = slotBytes - kPacketHeaderBytes;
  if (p.type == PacketType::kEager && p.bytes > room)
    return garbage(peer, "eager packet of " + std::to_string(p.bytes) + " bytes in a slot of " +
                             std::to_string(room));
  if (p.type == PacketType::kRts && p.bytes <= room)
    return garbage(peer, "rendezvous for " + std::to_string(p.bytes) +
                             " bytes, which fit a slot of " + std::to_string(room));
  return p;
}

std::vector<uint8_t> encodeConnInfo(const ConnInfo& info) {
  LOOM_CHECK(!info.qps.empty() && info.qps.size() <= kMaxQps, "ConnInfo QP count out of range");
  ByteWriter w;
  w.u32(kConnInfoMagic);
  w.u32(kConnInfoVersion);
  w.u32(info.lid);
  w.bytes(info.gid.data(), info.gid.size());
  w.u32(info.mtu);
  w.u64(info.ringAddr);
  w.u32(info.ringRkey);
  w.u32(info.slots);
  w.u32(info.slotBytes);
  w.u32(static_cast<uint32_t>(info.qps.size()));
  for (uint32_t i = 0; i < kMaxQps; ++i) {
    const QpInfo q = i < info.qps.size() ? info.qps[i] : QpInfo{};
    w.u32(q.qpn);
    w.u32(q.psn);
  }
  return w.take();
}

Result<ConnInfo> decodeConnInfo(const uint8_t* in, size_t bytes, const std::string& peer) {
  ByteReader r(in, bytes, "connection info from " + peer);
  ConnInfo info;
  uint32_t magic = 0, version = 0, nqps = 0;
  LOOM_RETURN_IF_ERROR(r.u32(&magic));
  LOOM_RETURN_IF_ERROR(r.u32(&version));
  if (magic != kConnInfoMagic || version != kConnInfoVersion)
    return garbage(peer, "connection info with magic " + std::to_string(magic) + " version " +
                             std::to_string(version) + " (another loom version?)");
  LOOM_RETURN_IF_ERROR(r.u32(&info.lid));
  LOOM_RETURN_IF_ERROR(r.bytes(info.gid.data(), info.gid.size()));
  LOOM_RETURN_IF_ERROR(r.u32(&info.mtu));
  LOOM_RETURN_IF_ERROR(r.u64(&info.ringAddr));
  LOOM_RETURN_IF_ERROR(r.u32(&info.ringRkey));
  LOOM_RETURN_IF_ERROR(r.u32(&info.slots));
  LOOM_RETURN_IF_ERROR(r.u32(&info.slotBytes));
  LOOM_RETURN_IF_ERROR(r.u32(&nqps));
  if (info.lid > 0xffff) return garbage(peer, "LID " + std::to_string(info.lid) + " over 16 bits");
  if (info.mtu < 1 || info.mtu > 5) return garbage(peer, "MTU code " + std::to_string(info.mtu));
  if (info.slots < 1 || info.slots > kMaxSlots || info.slotBytes <= kPacketHeaderBytes ||
      info.slotBytes > kMaxSlotBytes)
    return garbage(peer, "ring of " + std::to_string(info.slots) + " slots of " +
                             std::to_string(info.slotBytes) + " bytes");
  if (nqps < 1 || nqps > kMaxQps)
    return garbage(
        peer, std::to_string(nqps) + " queue pairs (1.." + std::to_string(kMaxQps) + " allowed)");
  for (uint32_t i = 0; i < kMaxQps; ++i) {
    QpInfo q;
    LOOM_RETURN_IF_ERROR(r.u32(&q.qpn));
    LOOM_RETURN_IF_ERROR(r.u32(&q.psn));
    if (q.psn > 0xffffff || q.qpn > 0xffffff) return garbage(peer, "QP number or PSN over 24 bits");
    if (i < nqps)
      info.qps.push_back(q);
    else if (q.qpn != 0 || q.psn != 0)
      return garbage(peer, "unused QP entry " + std::to_string(i) + " is not zero");
  }
  LOOM_RETURN_IF_ERROR(r.expectEnd());
  return info;
}

uint64_t chunkCount(uint64_t bytes, uint32_t nqps, uint64_t maxChunkBytes) {
  LOOM_CHECK(nqps > 0 && maxChunkBytes > 0, "planChunks needs queue pairs and a chunk size");
  if (bytes == 0) return 0;
  const uint64_t byLimit = (bytes + maxChunkBytes - 1) / maxChunkBytes;
  return std::max<uint64_t>(byLimit, std::min<uint64_t>(nqps, bytes));
}

std::vector<Chunk> planChunks(uint64_t bytes, uint32_t nqps, uint64_t maxChunkBytes) {
  const uint64_t n = chunkCount(bytes, nqps, maxChunkBytes);
  std::vector<Chunk> chunks;
  chunks.reserve(n);
  uint64_t offset = 0;
  for (uint64_t i = 0; i < n; ++i) {
    // Even split: the first (bytes % n) chunks get one byte more.
    const uint64_t size = bytes / n + (i < bytes % n ? 1 : 0);
    chunks.push_back(Chunk{static_cast<uint32_t>(i % nqps), offset, size});
    offset += size;
  }
  return chunks;
}

}  // namespace loom::transport::ibverbs
