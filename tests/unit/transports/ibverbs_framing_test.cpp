// The ibverbs wire formats (transports/ibverbs/framing.h): immediates, packet headers,
// connection info and the rendezvous chunk plan; garbage is a RemoteError naming the peer.
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>

#include "transports/ibverbs/framing.h"

namespace loom::transport::ibverbs {
namespace {

const std::string kPeer = "rank 7 (host b)";

void expectGarbage(const Status& s) {
  EXPECT_EQ(s.code(), Code::kRemoteError) << s.toString();
  EXPECT_NE(s.message().find(kPeer), std::string::npos) << s.toString();
}

TEST(FramingTest, PacketImmediateRoundTripsSlotAndLowSequenceBits) {
  for (uint32_t slot : {0u, 1u, 511u, kMaxSlots - 1})
    for (uint64_t seq : {0ull, 1ull, (1ull << kSeqBits) - 1, 1ull << kSeqBits, 0xdeadbeefcafeull}) {
      Result<Imm> d = decodeImm(packetImm(slot, seq), kMaxSlots, kPeer);
      ASSERT_TRUE(d.isOk()) << d.status().toString();
      EXPECT_EQ(d->kind, ImmKind::kPacket);
      EXPECT_EQ(d->slot, slot);
      EXPECT_EQ(d->seqLow, seq & ((1u << kSeqBits) - 1));
    }
}

TEST(FramingTest, RendezvousAndCreditImmediatesRoundTrip) {
  Result<Imm> r = decodeImm(rendezvousImm(kRdvIdMask + 5), 4, kPeer);
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->kind, ImmKind::kRendezvous);
  EXPECT_EQ(r->value, 4u);  // ids wrap modulo 2^30
  Result<Imm> c = decodeImm(creditImm(33), 4, kPeer);
  ASSERT_TRUE(c.isOk());
  EXPECT_EQ(c->kind, ImmKind::kCredit);
  EXPECT_EQ(c->value, 33u);
}

TEST(FramingTest, GarbageImmediatesAreRemoteErrorsNamingThePeer) {
  expectGarbage(decodeImm(0xc0000000u, 4, kPeer).status());      // kind 3
  expectGarbage(decodeImm(packetImm(4, 0), 4, kPeer).status());  // slot beyond the ring
  expectGarbage(decodeImm(0x80000000u, 4, kPeer).status());      // zero credits
}

TEST(FramingTest, PacketHeaderRoundTripsEveryField) {
  Packet p;
  p.type = PacketType::kRts;
  p.credits = 17;
  p.rdvId = 0x3fffffff;
  p.tag = 0x0123456789abcdefull;
  p.bytes = 1ull << 40;
  p.addr = 0x7fff00001000ull;
  p.rkey = 0xfeedf00d;
  uint8_t buf[kPacketHeaderBytes];
  encodePacketHeader(p, buf);
  Result<Packet> d = decodePacketHeader(buf, 4096, kPeer);
  ASSERT_TRUE(d.isOk()) << d.status().toString();
  EXPECT_EQ(d->type, p.type);
  EXPECT_EQ(d->credits, p.credits);
  EXPECT_EQ(d->rdvId, p.rdvId);
  EXPECT_EQ(d->tag, p.tag);
  EXPECT_EQ(d->bytes, p.bytes);
  EXPECT_EQ(d->addr, p.addr);
  EXPECT_EQ(d->rkey, p.rkey);
  // Little-endian on the wire whatever the host.
  EXPECT_EQ(buf[0], 'i');
  EXPECT_EQ(buf[16], 0xef);
}

TEST(FramingTest, EagerPayloadMustFitItsSlotAndRendezvousMustNot) {
  uint8_t buf[kPacketHeaderBytes];
  Packet p;
  p.bytes = 4096 - kPacketHeaderBytes;
  encodePacketHeader(p, buf);
  EXPECT_TRUE(decodePacketHeader(buf, 4096, kPeer).isOk());
  p.bytes += 1;
  encodePacketHeader(p, buf);
  expectGarbage(decodePacketHeader(buf, 4096, kPeer).status());
  p.type = PacketType::kRts;
  encodePacketHeader(p, buf);
  EXPECT_TRUE(decodePacketHeader(buf, 4096, kPeer).isOk());
  p.bytes = 10;
  encodePacketHeader(p, buf);
  expectGarbage(decodePacketHeader(buf, 4096, kPeer).status());
}

TEST(FramingTest, BadMagicOrTypeIsGarbage) {
  uint8_t buf[kPacketHeaderBytes];
  encodePacketHeader(Packet{}, buf);
  buf[0] ^= 1;
  expectGarbage(decodePacketHeader(buf, 4096, kPeer).status());
  encodePacketHeader(Packet{}, buf);
  buf[4] = 3;
  expectGarbage(decodePacketHeader(buf, 4096, kPeer).status());
  buf[4] = 0;
  expectGarbage(decodePacketHeader(buf, 4096, kPeer).status());
}

ConnInfo sampleInfo(uint32_t nqps) {
  ConnInfo info;
  info.lid = 0x1234;
  std::iota(info.gid.begin(), info.gid.end(), uint8_t{1});
  info.mtu = 5;
  info.ringAddr = 0x7f0012340000ull;
  info.ringRkey = 0xabcdef;
  info.slots = 64;
  info.slotBytes = 8192;
  for (uint32_t q = 0; q < nqps; ++q)
    info.qps.push_back(QpInfo{0x100 + q, 0xabc000 + q});
  return info;
}

TEST(FramingTest, ConnInfoRoundTripsForEveryQueuePairCount) {
  for (uint32_t nqps = 1; nqps <= kMaxQps; ++nqps) {
    std::vector<uint8_t> w = encodeConnInfo(sampleInfo(nqps));
    EXPECT_EQ(w.size(), kConnInfoBytes);
    Result<ConnInfo> d = decodeConnInfo(w.data(), w.size(), kPeer);
    ASSERT_TRUE(d.isOk()) << d.status().toString();
    const ConnInfo want = sampleInfo(nqps);
    EXPECT_EQ(d->lid, want.lid);
    EXPECT_EQ(d->gid, want.gid);
    EXPECT_EQ(d->mtu, want.mtu);
    EXPECT_EQ(d->ringAddr, want.ringAddr);
    EXPECT_EQ(d->ringRkey, want.ringRkey);
    EXPECT_EQ(d->slots, want.slots);
    EXPECT_EQ(d->slotBytes, want.slotBytes);
    ASSERT_EQ(d->qps.size(), nqps);
    for (uint32_t q = 0; q < nqps; ++q) {
      EXPECT_EQ(d->qps[q].qpn, want.qps[q].qpn);
      EXPECT_EQ(d->qps[q].psn, want.qps[q].psn);
    }
  }
}

TEST(FramingTest, EveryTruncationOfConnInfoIsARemoteError) {
  std::vector<uint8_t> w = encodeConnInfo(sampleInfo(3));
  for (size_t n = 0; n < w.size(); ++n)
    EXPECT_EQ(decodeConnInfo(w.data(), n, kPeer).status().code(), Code::kRemoteError) << n;
  w.push_back(0);
  EXPECT_EQ(decodeConnInfo(w.data(), w.size(), kPeer).status().code(), Code::kRemoteError);
}

TEST(FramingTest, ConnInfoOutsideLimitsIsGarbage) {
  auto rejects = [](ConnInfo info) {
    std::vector<uint8_t> w = encodeConnInfo(info);
    expectGarbage(decodeConnInfo(w.data(), w.size(), kPeer).status());
  };
  std::vector<uint8_t> bad = encodeConnInfo(sampleInfo(2));
  bad[4 * 4 + 16 + 8 + 4 * 3] = 0;  // the QP count
  expectGarbage(decodeConnInfo(bad.data(), bad.size(), kPeer).status());
  bad[4 * 4 + 16 + 8 + 4 * 3] = kMaxQps + 1;
  expectGarbage(decodeConnInfo(bad.data(), bad.size(), kPeer).status());
  bad[4 * 4 + 16 + 8 + 4 * 3] = 1;  // QP 1's entry is now unused but not zero
  expectGarbage(decodeConnInfo(bad.data(), bad.size(), kPeer).status());
  ConnInfo i = sampleInfo(1);
  i.mtu = 0;
  rejects(i);
  i = sampleInfo(1);
  i.mtu = 6;
  rejects(i);
  i = sampleInfo(1);
  i.slots = 0;
  rejects(i);
  i = sampleInfo(1);
  i.slots = kMaxSlots + 1;
  rejects(i);
  i = sampleInfo(1);
  i.slotBytes = static_cast<uint32_t>(kPacketHeaderBytes);
  rejects(i);
  i = sampleInfo(1);
  i.qps[0].psn = 1u << 24;
  rejects(i);
  i = sampleInfo(1);
  i.lid = 0x10000;
  rejects(i);
  std::vector<uint8_t> w = encodeConnInfo(sampleInfo(1));
  w[0] ^= 0xff;
  expectGarbage(decodeConnInfo(w.data(), w.size(), kPeer).status());
}

TEST(FramingTest, ChunksCoverTheMessageExactlyWithinTheLimitRoundRobin) {
  for (uint64_t bytes : {1ull, 2ull, 3ull, 1000ull, 4096ull, 65537ull, (5ull << 30) + 3})
    for (uint32_t nqps : {1u, 2u, 3u, 4u, 16u})
      for (uint64_t limit : {1ull, 7ull, 4096ull, 1ull << 30}) {
        if (bytes / limit > 100000) continue;  // keep the plan small
        std::vector<Chunk> chunks = planChunks(bytes, nqps, limit);
        ASSERT_EQ(chunks.size(), chunkCount(bytes, nqps, limit));
        uint64_t next = 0;
        for (size_t i = 0; i < chunks.size(); ++i) {
          EXPECT_EQ(chunks[i].offset, next);
          EXPECT_GT(chunks[i].bytes, 0u);
          EXPECT_LE(chunks[i].bytes, limit);
          EXPECT_EQ(chunks[i].qp, i % nqps);
          next += chunks[i].bytes;
        }
        EXPECT_EQ(next, bytes) << bytes << " " << nqps << " " << limit;
        // Every QP is used when there are bytes enough.
        if (bytes >= nqps) {
          EXPECT_GE(chunks.size(), nqps);
        }
      }
  EXPECT_TRUE(planChunks(0, 4, 4096).empty());
}

}  // namespace
}  // namespace loom::transport::ibverbs
