// The process-wide keeper of detached rendezvous roots (tcp_store.h: startDetachedRoot).
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <thread>
#include <vector>

#include "base/log.h"
#include "base/random.h"
#include "bootstrap/tcp_store.h"

namespace loom::bootstrap {

namespace {

constexpr int64_t kExitGraceMs = 3000;

class RootKeeper {
 public:
  static RootKeeper& instance() {
    static RootKeeper keeper;
    return keeper;
  }

  ~RootKeeper() {
    std::lock_guard<std::mutex> lock(mu_);
    if (::getpid() != pid_) {
      // A fork()ed child: the servers' threads live in the parent only. Leave them alone.
      new std::vector<std::shared_ptr<TcpStoreServer>>(std::move(servers_));
      return;
    }
    // Ranks in other processes may still be finishing with the store (a last barrier, a
    // cleanup): give them a short grace before the root goes away under them.
    Deadline grace = Deadline::afterMs(kExitGraceMs);
    for (auto& s : servers_) {
      while (s->connectedClients() > 0 && s->running() && !grace.expired())
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      s->stop();
    }
  }

  Result<SocketAddress> start(SocketAddress bind, Secret secret,
                              const TcpStoreServer::Options& options) {
    std::lock_guard<std::mutex> lock(mu_);
    reap();
    LOOM_ASSIGN_OR_RETURN(std::shared_ptr<TcpStoreServer> server,
                          TcpStoreServer::start(std::move(bind), secret, options));
    servers_.push_back(server);
    return server->address();
  }

  size_t count() {
    std::lock_guard<std::mutex> lock(mu_);
    reap();
    return servers_.size();
  }

 private:
  // Touching the logger first makes its statics outlive the keeper's (destruction runs in
  // reverse order of construction), so a server stopping at exit can still log.
  RootKeeper() : pid_(::getpid()) { (void)log::enabled(LogLevel::kWarn, Subsys::kBootstrap); }

  void reap() {
    std::erase_if(servers_, [](const std::shared_ptr<TcpStoreServer>& s) {
      if (s->running()) return false;
      s->stop();  // joins a thread that has already left its loop
      return true;
    });
  }

  std::mutex mu_;
  std::vector<std::shared_ptr<TcpStoreServer>> servers_;
  int pid_;
};

}  // namespace

Result<SocketAddress> startDetachedRoot(SocketAddress bind, Secret secret,
                                        TcpStoreServer::Options options) {
  return RootKeeper::instance().start(std::move(bind), secret, options);
}

size_t detachedRootCount() {
  return RootKeeper::instance().count();
}

Result<UniqueId> createUniqueId(const std::string& socketIfname) {
  LOOM_ASSIGN_OR_RETURN(SocketAddress addr, findInterfaceAddress(socketIfname));
  addr.setPort(0);
  UniqueId id;
  LOOM_RETURN_IF_ERROR(secureRandom(id.secret.data(), id.secret.size()));
  LOOM_ASSIGN_OR_RETURN(id.root, startDetachedRoot(addr, id.secret));
  return id;
}

}  // namespace loom::bootstrap
