#include "transports/shm/shm_transport.h"

#include <unistd.h>

#include <cstdio>

#include "base/random.h"
#include "transports/shm/shm_connection.h"

namespace loom::transport {
namespace shm {

namespace {

class ShmTransport final : public Transport {
 public:
  static Result<std::unique_ptr<Transport>> create(const TransportContext& context,
                                                   const ShmOptions& options);

  const Capabilities& capabilities() const override { return capabilities_; }
  std::string localAddress() const override { return name_; }
  Result<std::unique_ptr<Connection>> connect(int peer, int lane,
                                              const std::string& peerAddress) override;
  Status progress() override { return acceptor_->progress(); }
  void addPollFds(std::vector<pollfd>* fds) const override { acceptor_->addPollFds(fds); }

 private:
  ShmTransport() = default;
  Status checkAddress(int peer, const std::string& address) const;

  Capabilities capabilities_;
  Identity identity_;
  ShmOptions options_;
  std::shared_ptr<Doorbell> bell_;
  const std::atomic<bool>* abortFlag_ = nullptr;
  std::string name_;
  std::shared_ptr<Acceptor> acceptor_;
};

Result<std::unique_ptr<Transport>> ShmTransport::create(const TransportContext& context,
                                                        const ShmOptions& options) {
  if (context.nranks < 1 || context.rank < 0 || context.rank >= context.nranks)
    return invalidArgument("shm transport: rank " + std::to_string(context.rank) +
                           " out of range for " + std::to_string(context.nranks) + " ranks");
  LOOM_RETURN_IF_ERROR(options.geometry.validate(false));
  if (options.copyChunkBytes == 0 || options.directMinBytes == 0 || options.cmaMinBytes == 0)
    return invalidArgument("shm transport: copyChunkBytes, directMinBytes and cmaMinBytes " +
                           std::string("must be > 0"));
  std::unique_ptr<ShmTransport> t(new ShmTransport());
  Config defaults;
  const Config& config = context.config ? *context.config : defaults;
  t->identity_ =
      Identity{context.rank, context.nranks, context.commHash, context.secret, config.timeoutMs};
  t->options_ = options;
  t->abortFlag_ = context.abortFlag;
  t->bell_ = context.doorbell;
  if (!t->bell_) {
    LOOM_ASSIGN_OR_RETURN(t->bell_, Doorbell::create());
  }
  uint64_t nonce = 0;
  LOOM_RETURN_IF_ERROR(secureRandom(&nonce, sizeof(nonce)));
  char name[96];
  std::snprintf(name, sizeof(name), "loom-shm-%016llx-%d-%016llx",
                static_cast<unsigned long long>(context.commHash), context.rank,
                static_cast<unsigned long long>(nonce));
  t->name_ = name;
  LOOM_ASSIGN_OR_RETURN(t->acceptor_, Acceptor::create(t->identity_, t->name_));
  Capabilities& c = t->capabilities_;
  c.name = "shm";
  c.hostMemory = true;
  c.sameHostOnly = true;
  // Between processes (the case the planner weighs); threads always get the direct copy.
  c.singleCopy = options.cma;
  // Measured on the development machine (shm_bench --rt): 15 GB/s per direction when both
  // directions stream (30 GB/s one way), 0.35 us one way for 8 bytes.
  c.bandwidthBytesPerSec = 15e9;
  c.latencySec = 0.35e-6;
  return std::unique_ptr<Transport>(std::move(t));
}

Status ShmTransport::checkAddress(int peer, const std::string& address) const {
  std::string prefix = "loom-shm-";
  bool ok = address.size() > prefix.size() && address.size() <= 100 &&
            address.compare(0, prefix.size(), prefix) == 0;
  for (char ch : address)
    ok = ok && ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || ch == '-');
  if (ok) return Status::ok();
  return invalidArgument("shm transport: '" + address + "' is not a shm address (rank " +
                         std::to_string(peer) + ")");
}

Result<std::unique_ptr<Connection>> ShmTransport::connect(int peer, int lane,
                                                          const std::string& peerAddress) {
  if (peer < 0 || peer >= identity_.nranks)
    return invalidArgument("shm connect: peer " + std::to_string(peer) + " out of range for " +
                           std::to_string(identity_.nranks) + " ranks");
  if (lane < 0 || lane >= kMaxLanes)
    return invalidArgument("shm connect: lane " + std::to_string(lane) + " out of range [0, " +
                           std::to_string(kMaxLanes) + ")");
  ShmConnection::Setup setup;
  setup.identity = identity_;
  setup.options = options_;
  setup.ownBell = bell_;
  setup.abortFlag = abortFlag_;
  setup.peer = peer;
  setup.lane = lane;
  if (peer == identity_.rank)
    return invalidArgument("shm connect: rank " + std::to_string(peer) +
                           " cannot connect to itself");
  LOOM_RETURN_IF_ERROR(checkAddress(peer, peerAddress));
  setup.peerAddress = peerAddress;
  setup.acceptor = acceptor_;  // both roles: accepting, or delivering a farewell
  if (identity_.rank < peer) {
    setup.role = ShmConnection::Role::kConnector;
  } else {
    setup.role = ShmConnection::Role::kAccepter;
    acceptor_->reopen(peer, lane);
  }
  LOOM_ASSIGN_OR_RETURN(std::unique_ptr<ShmConnection> c, ShmConnection::create(std::move(setup)));
  return std::unique_ptr<Connection>(std::move(c));
}

}  // namespace

ShmOptions ShmOptions::fromConfig(const Config& config) {
  ShmOptions options;
  options.cma = config.shmCma;
  return options;
}

Result<std::unique_ptr<Transport>> createShmTransport(const TransportContext& context,
                                                      const ShmOptions& options) {
  return ShmTransport::create(context, options);
}

}  // namespace shm

Result<std::unique_ptr<Transport>> createShmTransport(const TransportContext& context) {
  Config defaults;
  return shm::createShmTransport(
      context, shm::ShmOptions::fromConfig(context.config ? *context.config : defaults));
}

}  // namespace loom::transport
