// The socket transport: TCP between any two hosts; the inter-node path and the fallback for
// every pair no other transport serves (DESIGN.md section 3).
//
// Differences from the Transport contract in transports/transport.h:
//   - create() listens on findInterfaceAddress(config->socketIfname) with an ephemeral port;
//     localAddress() is that SocketAddress's 20-byte wire form.
//   - Of each pair, the lower rank dials the higher one's listener; the higher rank accepts in
//     progress() (its own, or that of any of its accepting connections) and proves the dialler
//     with an HMAC challenge over the job secret (wire.h). Sockets that fail are dropped and
//     logged; the job is not affected.
//   - Connections share the listener state with the Transport, so either may be destroyed
//     first. All of them must be driven by one thread at a time (the contract's rule).
#pragma once

#include <memory>

#include "transports/socket/hub.h"
#include "transports/transport.h"

namespace loom::transport::socket {

class SocketTransport final : public Transport {
 public:
  static Result<std::unique_ptr<Transport>> create(const TransportContext& context);

  const Capabilities& capabilities() const override { return capabilities_; }
  std::string localAddress() const override;
  Result<std::unique_ptr<Connection>> connect(int peer, int lane,
                                              const std::string& peerAddress) override;
  Status progress() override { return hub_->progress(); }
  void addPollFds(std::vector<pollfd>* fds) const override { hub_->addPollFds(fds); }

 private:
  explicit SocketTransport(std::shared_ptr<Hub> hub);

  std::shared_ptr<Hub> hub_;
  Capabilities capabilities_;
};

}  // namespace loom::transport::socket
