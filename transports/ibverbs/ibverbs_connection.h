// An ibverbs Connection: RC queue pairs to one peer on one lane, set up over a control stream.
//
// Setup. Each connection also holds a socket Connection to the same (peer, lane) - the control
// stream, authenticated by the socket transport's handshake. At creation the QPs are created
// and moved to INIT, the receives are posted, and this side's ConnInfo (framing.h: QP numbers,
// PSNs, LID/GID, MTU, eager ring) is sent on the control stream. When the peer's arrives, the
// QPs go RTR then RTS and a one-byte "ready" is sent; data moves once the peer's "ready" has
// arrived (so every write lands on a QP that accepts it). connection_state.h tracks the phases.
//
// Data. QP 0 carries packets: every message of at most kSlotBytes - 48 bytes is copied into a
// registered staging slot and RDMA-written with immediate into the next slot of the peer's eager
// ring (credits.h decides when a slot may be written); the send is complete at once. A larger
// message is announced with an Rts packet naming its registered address (registration cache);
// when the receiver's matching receive is at the head, the receiver pulls it with RDMA READs
// spread over all QPs (planChunks) into its own registered buffer, then writes a zero-byte
// "rendezvous done" immediate, which completes the send. Freed ring slots go back piggybacked
// on packets or as a credit immediate (credits.h). Completion counts are in posting order.
//
// Differences from the Connection contract in transports/transport.h:
//   - Wakeups are file descriptors: the completion channel, plus the control stream's socket
//     (so a dying peer is noticed even when no RDMA traffic is outstanding).
//   - close() waits for posted sends and every outstanding work request, then sends "bye" on
//     the control stream and closes it. A peer's "bye" fails only what can no longer complete
//     ("rank N closed the connection"). A peer that dies shows up through the control stream
//     or as a work completion error (retry exceeded after LOOM_IB_TIMEOUT/LOOM_IB_RETRY_CNT).
//   - An asynchronous port error on the device fails every connection on it, naming the port.
//
// Ownership: shares the Device with the transport. Thread-safety: none (the driving thread).
#pragma once

#include <infiniband/verbs.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "transports/ibverbs/connection_state.h"
#include "transports/ibverbs/credits.h"
#include "transports/ibverbs/framing.h"
#include "transports/ibverbs/ibverbs_device.h"
#include "transports/transport.h"

namespace loom::transport::ibverbs {

class IbverbsConnection final : public Connection {
 public:
  static constexpr uint32_t kSlots = 64;
  static constexpr uint32_t kSlotBytes = 8192;

  // control: a socket Connection to (peer, lane), just created. who: "rank 3".
  static Result<std::unique_ptr<IbverbsConnection>> create(std::shared_ptr<Device> device,
                                                           std::unique_ptr<Connection> control,
                                                           int rank, int peer, int lane);
  ~IbverbsConnection() override;

  int peer() const override { return peer_; }
  int lane() const override { return lane_; }

  Status postSend(const void* data, size_t bytes, uint64_t tag) override;
  Status postRecv(void* data, size_t bytes, uint64_t tag) override;
  Status progress() override;

  uint64_t sendsPosted() const override { return sendsPosted_; }
  uint64_t sendsCompleted() const override { return sendsCompleted_; }
  uint64_t recvsPosted() const override { return recvsPosted_; }
  uint64_t recvsCompleted() const override { return recvsCompleted_; }

  void addPollFds(std::vector<pollfd>* fds) const override;
  Status close(Deadline deadline) override;

 private:
  struct SendOp {
    const uint8_t* data = nullptr;
    size_t bytes = 0;
    uint64_t tag = 0;
    bool announced = false;  // its packet is written
    bool done = false;
    bool rendezvous = false;
    uint32_t rdvId = 0;
    MrCache::Ref ref;  // rendezvous: the registered source
  };
  struct RecvOp {
    uint8_t* data;
    size_t bytes;
    uint64_t tag;
  };
  // The rendezvous receive at the head, while its reads are in flight.
  struct Reading {
    bool active = false;
    uint32_t rdvId = 0;
    uint64_t remoteAddr = 0;
    uint32_t rkey = 0;
    std::vector<Chunk> chunks;
    size_t posted = 0;
    size_t completed = 0;
    MrCache::Ref ref;
  };

  IbverbsConnection(std::shared_ptr<Device> device, std::unique_ptr<Connection> control, int rank,
                    int peer, int lane);
  ConnInfo localInfo() const;

  // Setup (ibverbs_connection.cpp).
  Status createResources();
  Status createQp();
  Status toInit(ibv_qp* qp);
  Status toRtr(ibv_qp* qp, const QpInfo& remote);
  Status toRts(ibv_qp* qp, uint32_t psn);
  Status progressControl();
  Status onPeerInfo();
  Status onSignal();
  Status fail(const Status& error);
  Status peerClosedError() const;
  Status checkPeerClosed();
  Status flushForClose(Deadline deadline);
  void sayBye();

  // Data path (ibverbs_datapath.cpp).
  Status armAndPoll();
  Status pollCq(bool* any);
  Status onCompletion(const ibv_wc& wc);
  Status onRecvCompletion(const ibv_wc& wc);
  Status onPacket(const Imm& imm);
  Status onRendezvousDone(uint32_t rdvId);
  Status postRecvWr();
  Status postWr(uint32_t qp, ibv_send_wr* wr);
  Status pushSends();
  Status writePacket(SendOp& op);
  Status matchRecvs();
  Status startReading(const Packet& p, const RecvOp& r);
  Status postReads();
  Status finishReading();
  Status returnCredits();
  void completeSends();
  uint8_t* ringSlot(uint32_t slot) const { return recvRing_.get() + size_t{slot} * kSlotBytes; }
  uint8_t* stageSlot(uint32_t slot) const { return sendStage_.get() + size_t{slot} * kSlotBytes; }

  std::shared_ptr<Device> device_;
  std::unique_ptr<Connection> control_;
  const int rank_;
  const int peer_;
  const int lane_;
  ConnectionState state_;
  const uint32_t nqps_;

  ibv_comp_channel* channel_ = nullptr;
  ibv_cq* cq_ = nullptr;
  std::vector<ibv_qp*> qps_;
  std::vector<uint32_t> psns_;
  std::vector<uint32_t> sqOutstanding_;  // per QP: posted send WRs not yet completed
  uint32_t maxSendWr_ = 0;
  struct FreeDeleter {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t[], FreeDeleter> recvRing_;
  std::unique_ptr<uint8_t[], FreeDeleter> sendStage_;
  ibv_mr* recvRingMr_ = nullptr;
  ibv_mr* sendStageMr_ = nullptr;
  std::vector<bool> stageBusy_;

  // Control stream: the peer's ConnInfo, then one-byte signals ('R'eady, 'B'ye).
  std::vector<uint8_t> localInfoWire_;
  std::vector<uint8_t> peerInfoWire_;
  ConnInfo peerInfo_;
  uint8_t signalOut_[2] = {'R', 'B'};
  uint8_t signalIn_ = 0;
  uint64_t controlRecvsDone_ = 0;
  bool peerReady_ = false;
  bool peerClosed_ = false;
  bool byeSent_ = false;

  CreditSender tx_{kSlots};
  CreditReceiver rx_{kSlots};
  std::deque<Packet> arrived_;  // headers of ring packets not consumed yet, oldest first

  std::deque<SendOp> sends_;
  size_t firstUnannounced_ = 0;  // index into sends_
  uint32_t nextRdvId_ = 0;
  uint64_t sendsPosted_ = 0;
  uint64_t sendsCompleted_ = 0;

  std::deque<RecvOp> recvs_;
  Reading reading_;
  std::deque<uint32_t> donesOwed_;  // rendezvous-done immediates not yet posted
  uint64_t recvsPosted_ = 0;
  uint64_t recvsCompleted_ = 0;
};

}  // namespace loom::transport::ibverbs
