#include "transports/transport.h"

namespace loom::transport {

// Each backend defines its factory in its own folder. The shm backend is compiled only when
// its sources are present (transports/CMakeLists.txt defines LOOM_HAVE_SHM_TRANSPORT then), the
// ibverbs backend only when libibverbs was found (LOOM_HAVE_IBVERBS_TRANSPORT).
Result<std::unique_ptr<Transport>> createLoopbackTransport(const TransportContext& context);
#ifdef LOOM_HAVE_SHM_TRANSPORT
Result<std::unique_ptr<Transport>> createShmTransport(const TransportContext& context);
#endif
Result<std::unique_ptr<Transport>> createSocketTransport(const TransportContext& context);
#ifdef LOOM_HAVE_IBVERBS_TRANSPORT
Result<std::unique_ptr<Transport>> createIbverbsTransport(const TransportContext& context);
#endif

std::vector<std::string> transportNames() {
  return {
      "loopback",
#ifdef LOOM_HAVE_SHM_TRANSPORT
      "shm",
#endif
      "socket",
#ifdef LOOM_HAVE_IBVERBS_TRANSPORT
      "ibverbs",
#endif
  };
}

Result<std::unique_ptr<Transport>> createTransport(const std::string& name,
                                                   const TransportContext& context) {
  if (name == "loopback") return createLoopbackTransport(context);
#ifdef LOOM_HAVE_SHM_TRANSPORT
  if (name == "shm") return createShmTransport(context);
#endif
  if (name == "socket") return createSocketTransport(context);
#ifdef LOOM_HAVE_IBVERBS_TRANSPORT
  if (name == "ibverbs") return createIbverbsTransport(context);
#endif
  std::string known;
  for (const std::string& n : transportNames())
    known += (known.empty() ? "" : ", ") + n;
  return invalidArgument("unknown transport '" + name + "' (built into this library: " + known +
                         ")");
}

}  // namespace loom::transport
