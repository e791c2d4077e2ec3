#include "transports/socket/socket_transport.h"

#include "transports/socket/socket_connection.h"

namespace loom::transport {

Result<std::unique_ptr<Transport>> createSocketTransport(const TransportContext& context) {
  return socket::SocketTransport::create(context);
}

namespace socket {

Result<std::unique_ptr<Transport>> SocketTransport::create(const TransportContext& context) {
  if (context.rank < 0 || context.rank >= context.nranks)
    return invalidArgument("socket transport: rank " + std::to_string(context.rank) +
                           " is not in [0, " + std::to_string(context.nranks) + ")");
  LOOM_ASSIGN_OR_RETURN(std::shared_ptr<Hub> hub, Hub::create(context));
  return std::unique_ptr<Transport>(new SocketTransport(std::move(hub)));
}

SocketTransport::SocketTransport(std::shared_ptr<Hub> hub) : hub_(std::move(hub)) {
  capabilities_.name = "socket";
  capabilities_.bandwidthBytesPerSec = 1.25e9;  // a 10 Gb/s NIC; calibration refines it
  capabilities_.latencySec = 20e-6;
}

std::string SocketTransport::localAddress() const {
  uint8_t wire[SocketAddress::kWireBytes];
  hub_->address().toWire(wire);
  return std::string(reinterpret_cast<const char*>(wire), sizeof(wire));
}

Result<std::unique_ptr<Connection>> SocketTransport::connect(int peer, int lane,
                                                             const std::string& peerAddress) {
  const Identity& me = hub_->identity();
  if (peer < 0 || peer >= me.nranks || peer == me.rank)
    return invalidArgument("socket connect from rank " + std::to_string(me.rank) + ": peer " +
                           std::to_string(peer) + " is not another rank of [0, " +
                           std::to_string(me.nranks) + ")");
  if (lane < 0 || static_cast<uint32_t>(lane) >= kMaxLanes)
    return invalidArgument("socket connect: lane " + std::to_string(lane) + " is not in [0, " +
                           std::to_string(kMaxLanes) + ")");
  if (peerAddress.size() != SocketAddress::kWireBytes)
    return invalidArgument("socket connect: rank " + std::to_string(peer) + "'s address is " +
                           std::to_string(peerAddress.size()) + " bytes, not a socket address");
  LOOM_ASSIGN_OR_RETURN(
      SocketAddress address,
      SocketAddress::fromWire(reinterpret_cast<const uint8_t*>(peerAddress.data())));
  LOOM_ASSIGN_OR_RETURN(std::unique_ptr<SocketConnection> conn,
                        SocketConnection::create(hub_, peer, lane, address));
  return std::unique_ptr<Connection>(std::move(conn));
}

}  // namespace socket
}  // namespace loom::transport
