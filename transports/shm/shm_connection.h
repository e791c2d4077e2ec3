// ShmConnection: one (peer, lane) of the shm transport. See shm_transport.h for the design
// and transport.h for the contract; this header only adds what differs.
//
// State: connecting (handshake) -> ready -> closed, or failed (sticky) from any of them.
// Memory: owns its receive ring (created here, mapped by the peer), a mapping of the peer's
// ring, a DoorbellRef to the peer's doorbell and the control socket. The peer's mappings stay
// valid after the peer exits, so data it published before dying or closing is still delivered.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "base/doorbell.h"
#include "transports/shm/handshake.h"
#include "transports/shm/ring.h"
#include "transports/shm/shm_transport.h"
#include "transports/shm/single_copy.h"
#include "transports/transport.h"

namespace loom::transport::shm {

class ShmConnection final : public Connection {
 public:
  enum class Role { kConnector, kAccepter };
  struct Setup {
    Identity identity;
    ShmOptions options;
    std::shared_ptr<Doorbell> ownBell;
    const std::atomic<bool>* abortFlag = nullptr;
    int peer = 0;
    int lane = 0;
    Role role = Role::kConnector;
    std::string peerAddress;
    // The Transport's handshake hub: accepts for kAccepter, delivers a kConnector's farewell.
    std::shared_ptr<Acceptor> acceptor;
  };
  static Result<std::unique_ptr<ShmConnection>> create(Setup setup);
  ~ShmConnection() override;

  int peer() const override { return setup_.peer; }
  int lane() const override { return setup_.lane; }
  Status postSend(const void* data, size_t bytes, uint64_t tag) override;
  Status postRecv(void* data, size_t bytes, uint64_t tag) override;
  Status progress() override;
  uint64_t sendsPosted() const override { return sendsPosted_; }
  uint64_t sendsCompleted() const override { return sendsCompleted_; }
  uint64_t recvsPosted() const override { return recvsPosted_; }
  uint64_t recvsCompleted() const override { return recvsCompleted_; }
  void addPollFds(std::vector<pollfd>* fds) const override;
  Status close(Deadline deadline) override;

  // For tests: the handshake finished; the rings (nullptr before the handshake); whether
  // large messages to the peer would use CMA or a direct copy.
  bool readyForTesting() const { return ready_; }
  Ring* receiveRingForTesting() { return rxRing_.mapped() ? &rxRing_ : nullptr; }
  Ring* sendRingForTesting() { return txRing_.mapped() ? &txRing_ : nullptr; }
  bool sendsWithCmaForTesting() const;
  bool sendsDirectForTesting() const { return txDirect_ != nullptr; }

 private:
  enum class Mode : uint8_t { kUnset, kData, kCma, kDirect };
  struct SendOp {
    const uint8_t* data;
    uint64_t bytes;
    uint64_t tag;
    uint64_t pushed = 0;    // bytes copied into the ring
    uint64_t ackAfter = 0;  // single copy: complete once the consumer freed this many slots
    Mode mode = Mode::kUnset;
  };
  struct RecvOp {
    uint8_t* data;
    uint64_t bytes;
    uint64_t tag;
    uint64_t received = 0;
    Mode mode = Mode::kUnset;
  };

  explicit ShmConnection(Setup setup) : setup_(std::move(setup)) {}
  Status init();
  LocalEndpoint localEndpoint() const;
  Status progressOnce();
  Status progressHandshake();
  Status establish(Established established);
  Status watchPeer();
  Status checkSocket();
  Status checkPeerClosing() const;
  Status fail(Status status);
  void teardown();
  bool pending() const { return sendsCompleted_ < sendsPosted_ || recvsCompleted_ < recvsPosted_; }
  std::string peerName() const;

  // Data path (shm_datapath.cpp). *rang: a slot was published or freed (ring the peer).
  Status pumpSends(bool* moved, bool* rang);
  Status completeSends(bool* moved);
  Mode chooseMode(const SendOp& op) const;
  void fillSlot(SendOp* op, SlotHeader* slot);
  Status pumpRecvs(bool* moved, bool* rang, bool* selfWake);
  Status deliver(const SlotView& view, RecvOp* op, bool* slotDone);
  Status copySingle(const SlotView& view, Mode mode, RecvOp* op);
  Status mismatch(const SlotView& view, const RecvOp& op) const;
  Status corrupted(const SlotView& view, const std::string& what) const;

  Setup setup_;
  std::unique_ptr<Connector> connector_;
  int64_t handshakeDeadlineNs_ = 0;
  bool ready_ = false;
  bool peerClosed_ = false;  // its control socket reached EOF
  bool closing_ = false;     // close() started: no new operations
  bool closed_ = false;
  Status error_;
  Status closeStatus_;

  Ring rxRing_;  // ours; the peer produces into it
  RingConsumer consumer_;
  Ring txRing_;  // the peer's; we produce into it
  RingProducer producer_;
  DoorbellRef peerBell_;
  DoorbellRef ownBellRef_;  // see pumpRecvs
  UniqueFd socket_;
  pid_t peerPid_ = 0;
  bool sameProcess_ = false;
  bool readsCma_ = false;                  // our CMA probe of the peer succeeded
  std::shared_ptr<DirectTable> rxDirect_;  // ours, registered under directToken_
  std::shared_ptr<DirectTable> txDirect_;  // the peer's, same process only
  uint64_t directToken_ = 0;
  uint64_t probeCookie_ = 0;  // the peer reads it with process_vm_readv to probe CMA

  std::deque<SendOp> sends_;  // [sendsCompleted_, sendsPosted_)
  size_t sendCursor_ = 0;     // sends_[0, sendCursor_) are fully in the ring
  std::deque<RecvOp> recvs_;  // [recvsCompleted_, recvsPosted_)
  uint64_t sendsPosted_ = 0, sendsCompleted_ = 0, recvsPosted_ = 0, recvsCompleted_ = 0;
  uint32_t idleCalls_ = 0;
  int64_t lastLivenessNs_ = 0;
};

}  // namespace loom::transport::shm
