// Setup, control stream and teardown of an ibverbs connection (the data path is in
// ibverbs_datapath.cpp).
#include "transports/ibverbs/ibverbs_connection.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "base/log.h"
#include "base/random.h"

namespace loom::transport::ibverbs {

namespace {
constexpr uint64_t kTagInfo = 0x1b7e00000001ull;
constexpr uint64_t kTagSignal = 0x1b7e00000002ull;
constexpr uint8_t kSignalReady = 'R';
constexpr uint8_t kSignalBye = 'B';
constexpr uint32_t kRecvWrs = 3 * IbverbsConnection::kSlots;  // packets + credits + dones
constexpr int kRnrTimer = 12;                                 // 0.64 ms
constexpr int kRnrRetryForever = 7;
}  // namespace

void IbverbsConnection::FreeDeleter::operator()(uint8_t* p) const {
  std::free(p);
}

IbverbsConnection::IbverbsConnection(std::shared_ptr<Device> device,
                                     std::unique_ptr<Connection> control, int rank, int peer,
                                     int lane)
    : device_(std::move(device)),
      control_(std::move(control)),
      rank_(rank),
      peer_(peer),
      lane_(lane),
      state_("rank " + std::to_string(peer), device_->where()),
      nqps_(static_cast<uint32_t>(device_->config().ibQpsPerConnection)) {}

Result<std::unique_ptr<IbverbsConnection>> IbverbsConnection::create(
    std::shared_ptr<Device> device, std::unique_ptr<Connection> control, int rank, int peer,
    int lane) {
  std::unique_ptr<IbverbsConnection> c(
      new IbverbsConnection(std::move(device), std::move(control), rank, peer, lane));
  Status s = c->createResources();
  if (!s.isOk()) return s.withContext("ibverbs connection to rank " + std::to_string(peer));
  c->localInfoWire_ = encodeConnInfo(c->localInfo());
  c->peerInfoWire_.assign(kConnInfoBytes, 0);
  LOOM_RETURN_IF_ERROR(
      c->control_->postSend(c->localInfoWire_.data(), c->localInfoWire_.size(), kTagInfo));
  LOOM_RETURN_IF_ERROR(c->control_->postRecv(c->peerInfoWire_.data(), kConnInfoBytes, kTagInfo));
  LOOM_RETURN_IF_ERROR(c->control_->postRecv(&c->signalIn_, 1, kTagSignal));
  LOOM_RETURN_IF_ERROR(c->state_.advance(Phase::kExchange));
  return c;
}

Status IbverbsConnection::createResources() {
  ibv_context* ctx = device_->context();
  channel_ = ibv_create_comp_channel(ctx);
  if (channel_ == nullptr) return systemErrorFromErrno("ibv_create_comp_channel", errno);
  const int flags = fcntl(channel_->fd, F_GETFL);
  if (flags < 0 || fcntl(channel_->fd, F_SETFL, flags | O_NONBLOCK) < 0)
    return systemErrorFromErrno("fcntl(completion channel, O_NONBLOCK)", errno);
  maxSendWr_ = 2 * kSlots + 32;
  const int cqe = static_cast<int>(nqps_ * maxSendWr_ + kRecvWrs + nqps_);
  cq_ = ibv_create_cq(ctx, cqe, nullptr, channel_, 0);
  if (cq_ == nullptr) return systemErrorFromErrno("ibv_create_cq", errno);
  if (ibv_req_notify_cq(cq_, 0) != 0) return systemErrorFromErrno("ibv_req_notify_cq", errno);
  for (uint32_t q = 0; q < nqps_; ++q)
    LOOM_RETURN_IF_ERROR(createQp());
  const size_t ringBytes = size_t{kSlots} * kSlotBytes;
  const auto page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  recvRing_.reset(static_cast<uint8_t*>(std::aligned_alloc(page, ringBytes)));
  sendStage_.reset(static_cast<uint8_t*>(std::aligned_alloc(page, ringBytes)));
  if (!recvRing_ || !sendStage_) return systemError("out of memory for the eager rings");
  std::memset(recvRing_.get(), 0, ringBytes);
  LOOM_ASSIGN_OR_RETURN(recvRingMr_,
                        device_->registerMemory(recvRing_.get(), ringBytes,
                                                IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE));
  LOOM_ASSIGN_OR_RETURN(
      sendStageMr_, device_->registerMemory(sendStage_.get(), ringBytes, IBV_ACCESS_LOCAL_WRITE));
  stageBusy_.assign(kSlots, false);
  for (uint32_t i = 0; i < kRecvWrs; ++i)
    LOOM_RETURN_IF_ERROR(postRecvWr());
  return Status::ok();
}

Status IbverbsConnection::createQp() {
  ibv_qp_init_attr init{};
  init.send_cq = cq_;
  init.recv_cq = cq_;
  init.qp_type = IBV_QPT_RC;
  init.cap.max_send_wr = maxSendWr_;
  init.cap.max_recv_wr = qps_.empty() ? kRecvWrs : 1;  // only QP 0 receives
  init.cap.max_send_sge = 1;
  init.cap.max_recv_sge = 1;
  ibv_qp* qp = ibv_create_qp(device_->pd(), &init);
  if (qp == nullptr) return systemErrorFromErrno("ibv_create_qp", errno);
  qps_.push_back(qp);
  sqOutstanding_.push_back(0);
  uint32_t psn = 0;
  LOOM_RETURN_IF_ERROR(secureRandom(&psn, sizeof(psn)));
  psns_.push_back(psn & 0xffffff);
  return toInit(qp);
}

Status IbverbsConnection::toInit(ibv_qp* qp) {
  ibv_qp_attr a{};
  a.qp_state = IBV_QPS_INIT;
  a.pkey_index = 0;
  a.port_num = static_cast<uint8_t>(device_->port().port);
  a.qp_access_flags = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
  const int err =
      ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
  return err == 0 ? Status::ok() : systemErrorFromErrno("ibv_modify_qp(INIT)", err);
}

Status IbverbsConnection::toRtr(ibv_qp* qp, const QpInfo& remote) {
  const PortInfo& port = device_->port();
  const Config& cfg = device_->config();
  ibv_qp_attr a{};
  a.qp_state = IBV_QPS_RTR;
  a.path_mtu = static_cast<ibv_mtu>(std::min<uint32_t>(port.mtu, peerInfo_.mtu));
  a.dest_qp_num = remote.qpn;
  a.rq_psn = remote.psn;
  a.max_dest_rd_atomic = static_cast<uint8_t>(port.maxRdAtomic);
  a.min_rnr_timer = kRnrTimer;
  a.ah_attr.port_num = static_cast<uint8_t>(port.port);
  a.ah_attr.sl = static_cast<uint8_t>(cfg.ibSl);
  if (port.ethernet) {
    a.ah_attr.is_global = 1;
    std::memcpy(a.ah_attr.grh.dgid.raw, peerInfo_.gid.data(), 16);
    a.ah_attr.grh.sgid_index = static_cast<uint8_t>(port.gidIndex);
    a.ah_attr.grh.hop_limit = 255;
    a.ah_attr.grh.traffic_class = static_cast<uint8_t>(cfg.ibTc);
  } else {
    a.ah_attr.dlid = static_cast<uint16_t>(peerInfo_.lid);
  }
  const int err =
      ibv_modify_qp(qp, &a,
                    IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
                        IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER);
  return err == 0 ? Status::ok() : systemErrorFromErrno("ibv_modify_qp(RTR)", err);
}

Status IbverbsConnection::toRts(ibv_qp* qp, uint32_t psn) {
  const Config& cfg = device_->config();
  ibv_qp_attr a{};
  a.qp_state = IBV_QPS_RTS;
  a.timeout = static_cast<uint8_t>(cfg.ibTimeout);
  a.retry_cnt = static_cast<uint8_t>(cfg.ibRetryCnt);
  a.rnr_retry = kRnrRetryForever;
  a.sq_psn = psn;
  a.max_rd_atomic = static_cast<uint8_t>(device_->port().maxRdAtomic);
  const int err = ibv_modify_qp(qp, &a,
                                IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
                                    IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC);
  return err == 0 ? Status::ok() : systemErrorFromErrno("ibv_modify_qp(RTS)", err);
}

ConnInfo IbverbsConnection::localInfo() const {
  const PortInfo& port = device_->port();
  ConnInfo info;
  info.lid = port.lid;
  std::memcpy(info.gid.data(), port.gid.raw, 16);
  info.mtu = static_cast<uint32_t>(port.mtu);
  info.ringAddr = reinterpret_cast<uint64_t>(recvRing_.get());
  info.ringRkey = recvRingMr_->rkey;
  info.slots = kSlots;
  info.slotBytes = kSlotBytes;
  for (uint32_t q = 0; q < nqps_; ++q)
    info.qps.push_back(QpInfo{qps_[q]->qp_num, psns_[q]});
  return info;
}

Status IbverbsConnection::fail(const Status& error) {
  const bool first = state_.phase() != Phase::kFailed;
  Status sticky = state_.fail(error);
  if (first && !sticky.isOk()) LOOM_LOG(kWarn, kNet) << "ibverbs: " << sticky.message();
  return sticky;
}

Status IbverbsConnection::progressControl() {
  Status s = control_->progress();
  if (!s.isOk()) {
    if (peerClosed_) return checkPeerClosed();  // the stream's end after "bye" is expected
    return fail(s);
  }
  while (control_->recvsCompleted() > controlRecvsDone_) {
    ++controlRecvsDone_;
    LOOM_RETURN_IF_ERROR(controlRecvsDone_ == 1 ? onPeerInfo() : onSignal());
  }
  return Status::ok();
}

Status IbverbsConnection::onPeerInfo() {
  const std::string who = "rank " + std::to_string(peer_);
  Result<ConnInfo> info = decodeConnInfo(peerInfoWire_.data(), peerInfoWire_.size(), who);
  if (!info.isOk()) return fail(info.status());
  peerInfo_ = std::move(info).value();
  if (peerInfo_.slots != kSlots || peerInfo_.slotBytes != kSlotBytes)
    return fail(remoteError(who + " uses an eager ring of " + std::to_string(peerInfo_.slots) +
                            " x " + std::to_string(peerInfo_.slotBytes) + " bytes, this rank " +
                            std::to_string(kSlots) + " x " + std::to_string(kSlotBytes)));
  if (peerInfo_.qps.size() != nqps_)
    return fail(remoteError(who + " uses " + std::to_string(peerInfo_.qps.size()) +
                            " QPs per connection, this rank " + std::to_string(nqps_) +
                            " (LOOM_IB_QPS_PER_CONNECTION must agree)"));
  for (uint32_t q = 0; q < nqps_; ++q) {
    Status s = toRtr(qps_[q], peerInfo_.qps[q]);
    if (!s.isOk()) return fail(s);
  }
  LOOM_RETURN_IF_ERROR(state_.advance(Phase::kRtr));
  for (uint32_t q = 0; q < nqps_; ++q) {
    Status s = toRts(qps_[q], psns_[q]);
    if (!s.isOk()) return fail(s);
  }
  LOOM_RETURN_IF_ERROR(state_.advance(Phase::kRts));
  Status s = control_->postSend(&signalOut_[0], 1, kTagSignal);
  return s.isOk() ? Status::ok() : fail(s);
}

Status IbverbsConnection::onSignal() {
  if (signalIn_ == kSignalBye) {
    peerClosed_ = true;
    return Status::ok();
  }
  if (signalIn_ != kSignalReady || peerReady_ || state_.phase() != Phase::kRts)
    return fail(remoteError("unexpected control signal " + std::to_string(signalIn_) +
                            " from rank " + std::to_string(peer_) + " in phase " +
                            phaseName(state_.phase())));
  peerReady_ = true;
  LOOM_RETURN_IF_ERROR(state_.advance(Phase::kOpen));
  Status s = control_->postRecv(&signalIn_, 1, kTagSignal);  // for the bye
  return s.isOk() ? Status::ok() : fail(s);
}

Status IbverbsConnection::peerClosedError() const {
  return remoteError("rank " + std::to_string(peer_) + " closed the connection with " +
                     std::to_string(sendsPosted_ - sendsCompleted_) + " send(s) and " +
                     std::to_string(recvsPosted_ - recvsCompleted_) + " receive(s) pending here");
}

// After the peer's bye: what is still owed here can never complete.
Status IbverbsConnection::checkPeerClosed() {
  if (!peerClosed_ || state_.terminal()) return state_.error();
  const bool recvStuck = recvs_.size() > arrived_.size() + (reading_.active ? 1 : 0);
  const bool sendStuck = sendsCompleted_ < sendsPosted_;
  if (recvStuck || sendStuck) return fail(peerClosedError());
  return Status::ok();
}

void IbverbsConnection::sayBye() {
  if (byeSent_) return;
  byeSent_ = true;
  control_->postSend(&signalOut_[1], 1, kTagSignal).ignoreError();
  control_->progress().ignoreError();
}

Status IbverbsConnection::flushForClose(Deadline deadline) {
  auto outstandingWrs = [&] {
    for (uint32_t n : sqOutstanding_)
      if (n > 0) return true;
    return false;
  };
  // A connection that never opened and owes nothing does not wait for its peer.
  while (sendsCompleted_ < sendsPosted_ || outstandingWrs() || !donesOwed_.empty()) {
    LOOM_RETURN_IF_ERROR(progress());
    if (peerClosed_) return checkPeerClosed();
    if (deadline.expired())
      return timeoutError("closing the ibverbs connection to rank " + std::to_string(peer_) + ": " +
                          std::to_string(sendsPosted_ - sendsCompleted_) +
                          " send(s) still pending at the deadline");
    if (!state_.open() && sendsCompleted_ == sendsPosted_) break;
    std::vector<pollfd> fds;
    addPollFds(&fds);
    ::poll(fds.data(), fds.size(), static_cast<int>(std::min<int64_t>(deadline.remainingMs(), 10)));
  }
  return Status::ok();
}

Status IbverbsConnection::close(Deadline deadline) {
  if (state_.phase() == Phase::kClosed) return Status::ok();
  Status s = state_.phase() == Phase::kFailed ? state_.error() : flushForClose(deadline);
  sayBye();
  Status c = control_->close(deadline);
  state_.close();
  if (!s.isOk()) return s;
  return peerClosed_ ? Status::ok() : c;
}

IbverbsConnection::~IbverbsConnection() {
  if (control_ && state_.phase() != Phase::kClosed) sayBye();
  MrCache& cache = device_->mrCache();
  for (const SendOp& op : sends_)
    if (op.rendezvous && op.announced && !op.done) cache.release(op.ref).ignoreError();
  if (reading_.active) cache.release(reading_.ref).ignoreError();
  for (ibv_qp* qp : qps_)
    ibv_destroy_qp(qp);
  if (cq_) ibv_destroy_cq(cq_);
  if (channel_) ibv_destroy_comp_channel(channel_);
  if (recvRingMr_) ibv_dereg_mr(recvRingMr_);
  if (sendStageMr_) ibv_dereg_mr(sendStageMr_);
}

}  // namespace loom::transport::ibverbs
