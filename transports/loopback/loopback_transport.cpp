#include "transports/loopback/loopback_transport.h"

#include <unistd.h>

#include "transports/loopback/loopback_connection.h"
#include "transports/loopback/pair.h"

namespace loom::transport {

Result<std::unique_ptr<Transport>> createLoopbackTransport(const TransportContext& context) {
  return loopback::LoopbackTransport::create(context);
}

namespace loopback {

namespace {

constexpr int kMaxLanes = 1 << 16;

std::string addressOf(int rank) {
  return "loopback:" + std::to_string(::getpid()) + ":" + std::to_string(rank);
}

}  // namespace

Result<std::unique_ptr<Transport>> LoopbackTransport::create(const TransportContext& context) {
  if (!context.doorbell)
    return invalidArgument("loopback transport needs TransportContext::doorbell");
  if (context.rank < 0 || context.rank >= context.nranks)
    return invalidArgument("loopback transport: rank " + std::to_string(context.rank) +
                           " is not in [0, " + std::to_string(context.nranks) + ")");
  LOOM_RETURN_IF_ERROR(registerEndpoint(context.commHash, context.rank));
  return std::unique_ptr<Transport>(new LoopbackTransport(context));
}

LoopbackTransport::LoopbackTransport(const TransportContext& context) : context_(context) {
  capabilities_.name = "loopback";
  capabilities_.sameHostOnly = true;
  capabilities_.sameProcessOnly = true;
  capabilities_.singleCopy = true;
  capabilities_.bandwidthBytesPerSec = 10e9;  // one memcpy of a large buffer
  capabilities_.latencySec = 1e-6;
}

LoopbackTransport::~LoopbackTransport() {
  unregisterEndpoint(context_.commHash, context_.rank);
}

std::string LoopbackTransport::localAddress() const {
  return addressOf(context_.rank);
}

Status LoopbackTransport::checkPeer(int peer, int lane, const std::string& peerAddress) const {
  if (peer < 0 || peer >= context_.nranks || peer == context_.rank)
    return invalidArgument("loopback connect from rank " + std::to_string(context_.rank) +
                           ": peer " + std::to_string(peer) + " is not another rank of [0, " +
                           std::to_string(context_.nranks) + ")");
  if (lane < 0 || lane >= kMaxLanes)
    return invalidArgument("loopback connect: lane " + std::to_string(lane) + " is not in [0, " +
                           std::to_string(kMaxLanes) + ")");
  if (peerAddress != addressOf(peer))
    return invalidArgument("loopback connect: rank " + std::to_string(peer) + "'s address '" +
                           peerAddress + "' is not a loopback rank of this process (expected '" +
                           addressOf(peer) + "'); loopback connects only threads of one process");
  return Status::ok();
}

Result<std::unique_ptr<Connection>> LoopbackTransport::connect(int peer, int lane,
                                                               const std::string& peerAddress) {
  LOOM_RETURN_IF_ERROR(checkPeer(peer, lane, peerAddress));
  std::shared_ptr<Pair> pair = attachPair(context_.commHash, context_.rank, peer, lane,
                                          DoorbellRef::local(context_.doorbell));
  return std::unique_ptr<Connection>(new LoopbackConnection(
      std::move(pair), context_.rank, peer, lane, context_.doorbell, context_.abortFlag));
}

}  // namespace loopback
}  // namespace loom::transport
