// The loopback transport: ranks that are threads of one process (DESIGN.md section 3). It is
// the reference backend and the test workhorse: every message moves with a single memcpy from
// the sender's buffer into the receiver's, and wakeups go through the ranks' doorbells.
//
// Differences from the Transport contract in transports/transport.h:
//   - createLoopbackTransport claims (commHash, rank) in a process-wide registry until the
//     Transport is destroyed; a second live Transport for the same rank is InvalidUsage.
//     TransportContext::doorbell is required (peers ring it).
//   - localAddress() is "loopback:<pid>:<rank>"; connect() refuses an address from another
//     process. progress() and addPollFds() have nothing to do: all work is per connection.
//   - Connections do not refer back to the Transport; either may be destroyed first.
#pragma once

#include <memory>

#include "transports/transport.h"

namespace loom::transport::loopback {

class LoopbackTransport final : public Transport {
 public:
  static Result<std::unique_ptr<Transport>> create(const TransportContext& context);
  ~LoopbackTransport() override;

  const Capabilities& capabilities() const override { return capabilities_; }
  std::string localAddress() const override;
  Result<std::unique_ptr<Connection>> connect(int peer, int lane,
                                              const std::string& peerAddress) override;
  Status progress() override { return Status::ok(); }
  void addPollFds(std::vector<pollfd>*) const override {}

 private:
  explicit LoopbackTransport(const TransportContext& context);
  Status checkPeer(int peer, int lane, const std::string& peerAddress) const;

  TransportContext context_;
  Capabilities capabilities_;
};

}  // namespace loom::transport::loopback
