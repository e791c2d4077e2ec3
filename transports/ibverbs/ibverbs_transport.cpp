#include "transports/ibverbs/ibverbs_transport.h"

#include "base/log.h"
#include "transports/ibverbs/ibverbs_connection.h"

namespace loom::transport {

Result<std::unique_ptr<Transport>> createSocketTransport(const TransportContext& context);

Result<std::unique_ptr<Transport>> createIbverbsTransport(const TransportContext& context) {
  return ibverbs::IbverbsTransport::create(context);
}

namespace ibverbs {

namespace {
constexpr char kAddressMagic[] = "ibv1";
constexpr size_t kAddressMagicBytes = 4;
constexpr double kLatencySec = 3e-6;  // an estimate until loom-perf --calibrate measures it
}  // namespace

Result<std::unique_ptr<Transport>> IbverbsTransport::create(const TransportContext& context) {
  if (context.config == nullptr) return invalidArgument("ibverbs transport: no config");
  if (context.rank < 0 || context.rank >= context.nranks)
    return invalidArgument("ibverbs transport: rank " + std::to_string(context.rank) +
                           " is not in [0, " + std::to_string(context.nranks) + ")");
  LOOM_ASSIGN_OR_RETURN(std::shared_ptr<Device> device, Device::open(*context.config));
  LOOM_ASSIGN_OR_RETURN(std::unique_ptr<Transport> control, createSocketTransport(context));
  LOOM_LOG(kInfo, kNet) << "ibverbs: using " << device->where()
                        << (device->port().ethernet ? " (RoCE, GID index " : " (InfiniBand, LID ")
                        << (device->port().ethernet ? device->port().gidIndex : device->port().lid)
                        << "), " << device->port().bytesPerSec * 8 / 1e9 << " Gb/s";
  return std::unique_ptr<Transport>(
      new IbverbsTransport(context, std::move(device), std::move(control)));
}

IbverbsTransport::IbverbsTransport(const TransportContext& context, std::shared_ptr<Device> device,
                                   std::unique_ptr<Transport> control)
    : context_(context), device_(std::move(device)), control_(std::move(control)) {
  capabilities_.name = "ibverbs";
  capabilities_.hostMemory = true;
  capabilities_.deviceMemory = false;
  capabilities_.singleCopy = true;  // large messages are read straight into the receive buffer
  capabilities_.bandwidthBytesPerSec = device_->port().bytesPerSec;
  capabilities_.latencySec = kLatencySec;
}

std::string IbverbsTransport::localAddress() const {
  return std::string(kAddressMagic, kAddressMagicBytes) + control_->localAddress();
}

Result<std::unique_ptr<Connection>> IbverbsTransport::connect(int peer, int lane,
                                                              const std::string& peerAddress) {
  if (peerAddress.compare(0, kAddressMagicBytes, kAddressMagic) != 0)
    return invalidArgument("ibverbs connect: rank " + std::to_string(peer) +
                           "'s address is not an ibverbs address");
  LOOM_ASSIGN_OR_RETURN(std::unique_ptr<Connection> control,
                        control_->connect(peer, lane, peerAddress.substr(kAddressMagicBytes)));
  LOOM_ASSIGN_OR_RETURN(
      std::unique_ptr<IbverbsConnection> c,
      IbverbsConnection::create(device_, std::move(control), context_.rank, peer, lane));
  return std::unique_ptr<Connection>(std::move(c));
}

Status IbverbsTransport::progress() {
  device_->pollAsyncEvents();
  return control_->progress();
}

void IbverbsTransport::addPollFds(std::vector<pollfd>* fds) const {
  fds->push_back(pollfd{device_->asyncFd(), POLLIN, 0});
  control_->addPollFds(fds);
}

}  // namespace ibverbs
}  // namespace loom::transport
