// The data path of an ibverbs connection: packets, credits, rendezvous reads and completions
// (ibverbs_connection.h describes the protocol).
#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "transports/ibverbs/ibverbs_connection.h"

namespace loom::transport::ibverbs {

namespace {

// Work request ids: kind in the top byte, a value below.
enum class Wr : uint64_t { kRecv = 1, kPacket = 2, kCredit = 3, kDone = 4, kRead = 5 };
uint64_t wrId(Wr kind, uint64_t value) {
  return (static_cast<uint64_t>(kind) << 56) | value;
}
Wr wrKind(uint64_t id) {
  return static_cast<Wr>(id >> 56);
}
uint64_t wrValue(uint64_t id) {
  return id & ((1ull << 56) - 1);
}

constexpr size_t kEagerMax = IbverbsConnection::kSlotBytes - kPacketHeaderBytes;
constexpr int kPollBatch = 16;

}  // namespace

Status IbverbsConnection::postSend(const void* data, size_t bytes, uint64_t tag) {
  LOOM_RETURN_IF_ERROR(state_.usable());
  if (data == nullptr && bytes > 0) return invalidArgument("ibverbs postSend: null buffer");
  SendOp op;
  op.data = static_cast<const uint8_t*>(data);
  op.bytes = bytes;
  op.tag = tag;
  sends_.push_back(op);
  ++sendsPosted_;
  return Status::ok();
}

Status IbverbsConnection::postRecv(void* data, size_t bytes, uint64_t tag) {
  LOOM_RETURN_IF_ERROR(state_.usable());
  if (data == nullptr && bytes > 0) return invalidArgument("ibverbs postRecv: null buffer");
  recvs_.push_back(RecvOp{static_cast<uint8_t*>(data), bytes, tag});
  ++recvsPosted_;
  return Status::ok();
}

void IbverbsConnection::addPollFds(std::vector<pollfd>* fds) const {
  if (channel_) fds->push_back(pollfd{channel_->fd, POLLIN, 0});
  control_->addPollFds(fds);
}

Status IbverbsConnection::progress() {
  if (state_.terminal()) return state_.error();
  if (!device_->portError().isOk()) return fail(device_->portError());
  LOOM_RETURN_IF_ERROR(armAndPoll());
  LOOM_RETURN_IF_ERROR(progressControl());
  if (state_.open()) {
    LOOM_RETURN_IF_ERROR(matchRecvs());
    LOOM_RETURN_IF_ERROR(postReads());
    LOOM_RETURN_IF_ERROR(returnCredits());
    LOOM_RETURN_IF_ERROR(pushSends());
  }
  completeSends();
  return checkPeerClosed();
}

// Drains the completion channel, re-arms it and polls until the CQ is empty. Arming before
// the last poll means a completion that arrives after it still wakes the fd.
Status IbverbsConnection::armAndPoll() {
  ibv_cq* evCq = nullptr;
  void* evCtx = nullptr;
  while (ibv_get_cq_event(channel_, &evCq, &evCtx) == 0)
    ibv_ack_cq_events(evCq, 1);
  bool any = true;
  while (any)
    LOOM_RETURN_IF_ERROR(pollCq(&any));
  if (ibv_req_notify_cq(cq_, 0) != 0) return fail(systemErrorFromErrno("ibv_req_notify_cq", errno));
  return pollCq(&any);
}

Status IbverbsConnection::pollCq(bool* any) {
  ibv_wc wc[kPollBatch];
  const int n = ibv_poll_cq(cq_, kPollBatch, wc);
  if (n < 0) return fail(systemError("ibv_poll_cq failed (" + std::to_string(n) + ")"));
  *any = n > 0;
  for (int i = 0; i < n; ++i)
    LOOM_RETURN_IF_ERROR(onCompletion(wc[i]));
  return Status::ok();
}

Status IbverbsConnection::onCompletion(const ibv_wc& wc) {
  const Wr kind = wrKind(wc.wr_id);
  if (kind != Wr::kRecv) {  // a send-queue completion: all QPs share the CQ
    for (uint32_t q = 0; q < nqps_; ++q)
      if (qps_[q]->qp_num == wc.qp_num && sqOutstanding_[q] > 0) --sqOutstanding_[q];
  }
  if (wc.status != IBV_WC_SUCCESS) {
    // After the peer's bye its QPs may be gone: a credit or done immediate (or a receive
    // flushed at teardown) that fails then is of no consequence.
    if (peerClosed_ && (kind == Wr::kCredit || kind == Wr::kDone || kind == Wr::kRecv))
      return Status::ok();
    std::string hint;
    if (wc.status == IBV_WC_RETRY_EXC_ERR || wc.status == IBV_WC_RNR_RETRY_EXC_ERR)
      hint = " (the peer is unreachable or dead; LOOM_IB_TIMEOUT / LOOM_IB_RETRY_CNT bound this)";
    return fail(remoteError(std::string("work completion error: ") + ibv_wc_status_str(wc.status) +
                            " (vendor error " + std::to_string(wc.vendor_err) + ")" + hint));
  }
  if (kind == Wr::kRecv) return onRecvCompletion(wc);
  switch (kind) {
    case Wr::kPacket:
      stageBusy_[wrValue(wc.wr_id)] = false;
      return Status::ok();
    case Wr::kRead:
      ++reading_.completed;
      return reading_.completed == reading_.chunks.size() ? finishReading() : Status::ok();
    case Wr::kCredit:
    case Wr::kDone:
      return Status::ok();
    default:
      return fail(
          internalError("completion with unknown work request id " + std::to_string(wc.wr_id)));
  }
}

Status IbverbsConnection::onRecvCompletion(const ibv_wc& wc) {
  if (wc.opcode != IBV_WC_RECV_RDMA_WITH_IMM || !(wc.wc_flags & IBV_WC_WITH_IMM))
    return fail(remoteError("rank " + std::to_string(peer_) +
                            " sent something other than an RDMA write with immediate"));
  LOOM_RETURN_IF_ERROR(postRecvWr());
  Result<Imm> imm = decodeImm(ntohl(wc.imm_data), kSlots, "rank " + std::to_string(peer_));
  if (!imm.isOk()) return fail(imm.status());
  switch (imm->kind) {
    case ImmKind::kPacket:
      return onPacket(imm.value());
    case ImmKind::kCredit: {
      Status s = tx_.onReturned(imm->value);
      return s.isOk() ? Status::ok() : fail(s);
    }
    case ImmKind::kRendezvous:
      return onRendezvousDone(imm->value);
  }
  return Status::ok();
}

Status IbverbsConnection::onPacket(const Imm& imm) {
  const std::string who = "rank " + std::to_string(peer_);
  Status s = rx_.onArrival(imm.slot, imm.seqLow, kSeqBits);
  if (!s.isOk()) return fail(s);
  Result<Packet> p = decodePacketHeader(ringSlot(imm.slot), kSlotBytes, who);
  if (!p.isOk()) return fail(p.status());
  // Credits count at arrival, not when the packet is matched: they must not wait for the
  // application (that could deadlock two ranks that send to each other).
  s = tx_.onReturned(p->credits);
  if (!s.isOk()) return fail(s);
  arrived_.push_back(p.value());
  return Status::ok();
}

Status IbverbsConnection::onRendezvousDone(uint32_t rdvId) {
  for (SendOp& op : sends_) {
    if (!op.rendezvous || op.done) continue;
    if (!op.announced || (op.rdvId & kRdvIdMask) != rdvId)
      return fail(remoteError("rank " + std::to_string(peer_) + " finished rendezvous " +
                              std::to_string(rdvId) + " but the oldest pending one is " +
                              std::to_string(op.rdvId & kRdvIdMask)));
    op.done = true;
    Status s = device_->mrCache().release(op.ref);
    return s.isOk() ? Status::ok() : fail(s);
  }
  return fail(remoteError("rank " + std::to_string(peer_) + " finished rendezvous " +
                          std::to_string(rdvId) + " but none is pending"));
}

Status IbverbsConnection::postRecvWr() {
  ibv_recv_wr wr{};
  ibv_recv_wr* bad = nullptr;
  wr.wr_id = wrId(Wr::kRecv, 0);
  wr.sg_list = nullptr;  // writes with immediate land in the ring; the WR only carries the imm
  wr.num_sge = 0;
  const int err = ibv_post_recv(qps_[0], &wr, &bad);
  return err == 0 ? Status::ok() : fail(systemErrorFromErrno("ibv_post_recv", err));
}

Status IbverbsConnection::postWr(uint32_t qp, ibv_send_wr* wr) {
  ibv_send_wr* bad = nullptr;
  wr->send_flags |= IBV_SEND_SIGNALED;
  const int err = ibv_post_send(qps_[qp], wr, &bad);
  if (err != 0) return fail(systemErrorFromErrno("ibv_post_send", err));
  ++sqOutstanding_[qp];
  return Status::ok();
}

// Writes packets for queued sends, in order, while credits, staging slots and queue room last.
Status IbverbsConnection::pushSends() {
  while (firstUnannounced_ < sends_.size() && tx_.canSend() && sqOutstanding_[0] < maxSendWr_ &&
         !stageBusy_[tx_.sent() % kSlots]) {
    LOOM_RETURN_IF_ERROR(writePacket(sends_[firstUnannounced_]));
    ++firstUnannounced_;
  }
  return Status::ok();
}

Status IbverbsConnection::writePacket(SendOp& op) {
  Packet p;
  p.tag = op.tag;
  p.bytes = op.bytes;
  if (op.bytes > kEagerMax) {
    Result<MrCache::Ref> ref = device_->mrCache().acquire(op.data, op.bytes);
    if (!ref.isOk()) return fail(ref.status());
    op.ref = ref.value();
    op.rendezvous = true;
    op.rdvId = nextRdvId_++;
    p.type = PacketType::kRts;
    p.rdvId = op.rdvId & kRdvIdMask;
    p.addr = reinterpret_cast<uint64_t>(op.data);
    p.rkey = op.ref.keys.rkey;
  }
  p.credits = rx_.takePending();
  const uint64_t seq = tx_.take();
  const auto slot = static_cast<uint32_t>(seq % kSlots);
  uint8_t* stage = stageSlot(slot);
  encodePacketHeader(p, stage);
  if (!op.rendezvous && op.bytes > 0) std::memcpy(stage + kPacketHeaderBytes, op.data, op.bytes);
  const size_t length = kPacketHeaderBytes + (op.rendezvous ? 0 : op.bytes);
  ibv_sge sge{reinterpret_cast<uint64_t>(stage), static_cast<uint32_t>(length), sendStageMr_->lkey};
  ibv_send_wr wr{};
  wr.wr_id = wrId(Wr::kPacket, slot);
  wr.sg_list = &sge;
  wr.num_sge = 1;
  wr.opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
  wr.imm_data = htonl(packetImm(slot, seq));
  wr.wr.rdma.remote_addr = peerInfo_.ringAddr + uint64_t{slot} * kSlotBytes;
  wr.wr.rdma.rkey = peerInfo_.ringRkey;
  stageBusy_[slot] = true;
  op.announced = true;
  op.done = !op.rendezvous;  // an eager send's buffer is free once copied
  return postWr(0, &wr);
}

void IbverbsConnection::completeSends() {
  while (!sends_.empty() && sends_.front().done) {
    sends_.pop_front();
    ++sendsCompleted_;
    if (firstUnannounced_ > 0) --firstUnannounced_;
  }
}

// Matches the head receive with the head packet, in order; a rendezvous holds the line until
// its reads complete.
Status IbverbsConnection::matchRecvs() {
  while (!reading_.active && !recvs_.empty() && !arrived_.empty()) {
    const Packet p = arrived_.front();
    const RecvOp r = recvs_.front();
    if (p.tag != r.tag || p.bytes != r.bytes)
      return fail(remoteError("rank " + std::to_string(peer_) + " sent " + std::to_string(p.bytes) +
                              " bytes with tag " + std::to_string(p.tag) +
                              " but the receive expects " + std::to_string(r.bytes) +
                              " bytes with tag " + std::to_string(r.tag)));
    if (p.type == PacketType::kEager && p.bytes > 0)
      std::memcpy(r.data, ringSlot(rx_.headSlot()) + kPacketHeaderBytes, p.bytes);
    arrived_.pop_front();
    rx_.consume();  // the header was copied; the slot is free
    if (p.type == PacketType::kRts) {
      LOOM_RETURN_IF_ERROR(startReading(p, r));
      continue;
    }
    recvs_.pop_front();
    ++recvsCompleted_;
  }
  return Status::ok();
}

Status IbverbsConnection::startReading(const Packet& p, const RecvOp& r) {
  Result<MrCache::Ref> ref = device_->mrCache().acquire(r.data, r.bytes);
  if (!ref.isOk()) return fail(ref.status());
  reading_.active = true;
  reading_.rdvId = p.rdvId;
  reading_.remoteAddr = p.addr;
  reading_.rkey = p.rkey;
  reading_.ref = ref.value();
  // An sge length is 32 bits; ports allow up to 2 GiB per message.
  const uint64_t maxChunk = std::min<uint64_t>(device_->port().maxMsgBytes, 1ull << 30);
  reading_.chunks = planChunks(p.bytes, nqps_, std::max<uint64_t>(maxChunk, 4096));
  reading_.posted = 0;
  reading_.completed = 0;
  return postReads();
}

Status IbverbsConnection::postReads() {
  while (reading_.active && reading_.posted < reading_.chunks.size()) {
    const Chunk& c = reading_.chunks[reading_.posted];
    if (sqOutstanding_[c.qp] >= maxSendWr_) break;
    const RecvOp& r = recvs_.front();
    ibv_sge sge{reinterpret_cast<uint64_t>(r.data) + c.offset, static_cast<uint32_t>(c.bytes),
                reading_.ref.keys.lkey};
    ibv_send_wr wr{};
    wr.wr_id = wrId(Wr::kRead, reading_.posted);
    wr.sg_list = &sge;
    wr.num_sge = 1;
    wr.opcode = IBV_WR_RDMA_READ;
    wr.wr.rdma.remote_addr = reading_.remoteAddr + c.offset;
    wr.wr.rdma.rkey = reading_.rkey;
    LOOM_RETURN_IF_ERROR(postWr(c.qp, &wr));
    ++reading_.posted;
  }
  return Status::ok();
}

Status IbverbsConnection::finishReading() {
  Status s = device_->mrCache().release(reading_.ref);
  if (!s.isOk()) return fail(s);
  donesOwed_.push_back(reading_.rdvId);
  reading_ = Reading{};
  recvs_.pop_front();
  ++recvsCompleted_;
  return Status::ok();
}

// Rendezvous-done and credit immediates: zero-byte writes that use no ring slot.
Status IbverbsConnection::returnCredits() {
  auto immOnly = [&](Wr kind, uint32_t imm) {
    ibv_send_wr wr{};
    wr.wr_id = wrId(kind, 0);
    wr.num_sge = 0;
    wr.opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
    wr.imm_data = htonl(imm);
    wr.wr.rdma.remote_addr = peerInfo_.ringAddr;
    wr.wr.rdma.rkey = peerInfo_.ringRkey;
    return postWr(0, &wr);
  };
  if (peerClosed_) donesOwed_.clear();
  while (!donesOwed_.empty() && sqOutstanding_[0] < maxSendWr_) {
    LOOM_RETURN_IF_ERROR(immOnly(Wr::kDone, rendezvousImm(donesOwed_.front())));
    donesOwed_.pop_front();
  }
  if (peerClosed_) return Status::ok();  // nobody is waiting for credits any more
  if (rx_.shouldReturnExplicitly() && sqOutstanding_[0] < maxSendWr_)
    LOOM_RETURN_IF_ERROR(immOnly(Wr::kCredit, creditImm(rx_.takePending())));
  return Status::ok();
}

}  // namespace loom::transport::ibverbs
