// The ibverbs transport: RDMA (RC queue pairs, RDMA write with immediate, RDMA read) between
// hosts (DESIGN.md section 3; docs/IBVERBS.md has the design and what has been run where).
//
// Differences from the Transport contract in transports/transport.h:
//   - create() fails (SystemError "no usable RDMA device: ...") when LOOM_IB_DISABLE is set,
//     when no device exists, or when no ACTIVE port passes LOOM_IB_HCA; InvalidArgument for a
//     malformed LOOM_IB_HCA or LOOM_IB_GID_INDEX. The runtime then uses sockets.
//   - It owns a socket transport for the control streams (one per connection: QP exchange,
//     ready and bye, and noticing a dead peer). localAddress() is "ibv1" followed by that
//     transport's address; progress() and addPollFds() cover it and the device's asynchronous
//     event fd.
//   - capabilities(): host memory only (deviceMemory = false: loom has no device buffers yet;
//     GPUDirect RDMA is future work), bandwidth from the port's rate, latency a fixed estimate.
#pragma once

#include <memory>

#include "transports/ibverbs/ibverbs_device.h"
#include "transports/transport.h"

namespace loom::transport::ibverbs {

class IbverbsTransport final : public Transport {
 public:
  static Result<std::unique_ptr<Transport>> create(const TransportContext& context);

  const Capabilities& capabilities() const override { return capabilities_; }
  std::string localAddress() const override;
  Result<std::unique_ptr<Connection>> connect(int peer, int lane,
                                              const std::string& peerAddress) override;
  Status progress() override;
  void addPollFds(std::vector<pollfd>* fds) const override;

 private:
  IbverbsTransport(const TransportContext& context, std::shared_ptr<Device> device,
                   std::unique_ptr<Transport> control);

  TransportContext context_;
  std::shared_ptr<Device> device_;
  std::unique_ptr<Transport> control_;
  Capabilities capabilities_;
};

}  // namespace loom::transport::ibverbs
