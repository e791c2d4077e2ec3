#include "transports/transport.h"

namespace loom::transport {

// Each backend defines its factory in its own folder.
Result<std::unique_ptr<Transport>> createLoopbackTransport(const TransportContext& context);
Result<std::unique_ptr<Transport>> createShmTransport(const TransportContext& context);
Result<std::unique_ptr<Transport>> createSocketTransport(const TransportContext& context);

std::vector<std::string> transportNames() { return {"loopback", "shm", "socket"}; }

Result<std::unique_ptr<Transport>> createTransport(const std::string& name,
                                                   const TransportContext& context) {
  if (name == "loopback") return createLoopbackTransport(context);
  if (name == "shm") return createShmTransport(context);
  if (name == "socket") return createSocketTransport(context);
  return invalidArgument("unknown transport '" + name + "' (known: loopback, shm, socket)");
}

}  // namespace loom::transport
