#include "runtime/engine.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>

#include "base/host.h"
#include "base/log.h"
#include "base/wire.h"
#include "runtime/testing.h"

namespace loom::runtime {

namespace {
constexpr uint32_t kPeerInfoMagic = 0x6c6d7069;  // "lmpi"
constexpr size_t kMaxHostBytes = 1024;
constexpr size_t kMaxTransports = 8;
}  // namespace

bootstrap::Bytes PeerInfo::serialize() const {
  ByteWriter w;
  w.u32(kPeerInfoMagic);
  w.u32(static_cast<uint32_t>(rank));
  w.i64(pid);
  w.str(hostId);
  w.str(hostName);
  w.u32(static_cast<uint32_t>(addresses.size()));
  for (const auto& [name, address] : addresses) {
    w.str(name);
    w.str(address);
  }
  w.u32(static_cast<uint32_t>(cpus));
  w.str(tuning);
  return w.take();
}

Result<PeerInfo> PeerInfo::parse(const bootstrap::Bytes& bytes, int expectedRank) {
  ByteReader r(bytes.data(), bytes.size(), "peer info of rank " + std::to_string(expectedRank));
  uint32_t magic, rank, n;
  PeerInfo info;
  LOOM_RETURN_IF_ERROR(r.u32(&magic));
  if (magic != kPeerInfoMagic)
    return remoteError("peer info of rank " + std::to_string(expectedRank) +
                       " has a bad magic number (a different loom version?)");
  LOOM_RETURN_IF_ERROR(r.u32(&rank));
  if (static_cast<int>(rank) != expectedRank)
    return remoteError("peer info published for rank " + std::to_string(expectedRank) +
                       " claims rank " + std::to_string(rank));
  info.rank = expectedRank;
  LOOM_RETURN_IF_ERROR(r.i64(&info.pid));
  LOOM_RETURN_IF_ERROR(r.str(&info.hostId, kMaxHostBytes));
  LOOM_RETURN_IF_ERROR(r.str(&info.hostName, kMaxHostBytes));
  LOOM_RETURN_IF_ERROR(r.u32(&n));
  if (n > kMaxTransports) return remoteError("peer info lists too many transports");
  for (uint32_t i = 0; i < n; ++i) {
    std::string name, address;
    LOOM_RETURN_IF_ERROR(r.str(&name, 64));
    LOOM_RETURN_IF_ERROR(r.str(&address, transport::Transport::kMaxAddressBytes));
    info.addresses.emplace_back(std::move(name), std::move(address));
  }
  uint32_t cpus;
  LOOM_RETURN_IF_ERROR(r.u32(&cpus));
  if (cpus < 1 || cpus > (1u << 20)) return remoteError("peer info: bad CPU count");
  info.cpus = static_cast<int32_t>(cpus);
  LOOM_RETURN_IF_ERROR(r.str(&info.tuning, PeerInfo::kMaxTuningBytes));
  LOOM_RETURN_IF_ERROR(r.expectEnd());
  return info;
}

Result<std::unique_ptr<Engine>> Engine::create(Params params) {
  std::unique_ptr<Engine> e(new Engine(std::move(params)));
  LOOM_ASSIGN_OR_RETURN(e->doorbell_, Doorbell::create());
  e->context_.rank = e->params_.rank;
  e->context_.nranks = e->params_.nranks;
  e->context_.commHash = e->params_.commHash;
  e->context_.secret = e->params_.secret;
  e->context_.config = &e->params_.config;
  e->context_.doorbell = e->doorbell_;
  e->context_.abortFlag = &e->abort_;

  Config& cfg = e->params_.config;
  std::vector<std::string> wanted;
  if (cfg.transport == "auto") {
    wanted = {"loopback", "socket"};
    if (!cfg.shmDisable) wanted.insert(wanted.begin() + 1, "shm");
    if (!cfg.ibDisable && ibverbsBuilt()) wanted.push_back("ibverbs");
  } else {
    wanted = {cfg.transport};
  }
  const TransportDecorator decorate = transportDecoratorForTesting();
  for (size_t i = 0; i < wanted.size(); ++i) {
    const std::string name = wanted[i];
    Result<std::unique_ptr<transport::Transport>> created =
        transport::createTransport(name, e->context_);
    if (!created.isOk() && name == "ibverbs") {
      if (e->ibverbsUnavailable(created.status())) wanted.push_back("socket");
      continue;
    }
    LOOM_ASSIGN_OR_RETURN(std::unique_ptr<transport::Transport> t, std::move(created));
    if (decorate) t = decorate(std::move(t), e->context_);
    e->local_.addresses.emplace_back(name, t->localAddress());
    e->transports_.emplace(name, std::move(t));
  }
  e->local_.rank = e->params_.rank;
  e->local_.pid = ::getpid();
  e->local_.cpus = usableCpus();
  e->local_.tuning = e->params_.tuning;
  e->local_.hostId = hostIdentity(cfg.hostId);
  e->local_.hostName = hostName();
  return e;
}

bool Engine::ibverbsBuilt() {
  for (const std::string& n : transport::transportNames())
    if (n == "ibverbs") return true;
  return false;
}

// Called when the ibverbs transport cannot be created: auto goes on without it (one INFO line
// per process: every communicator would say the same); a forced LOOM_TRANSPORT=ibverbs falls
// back to socket, loudly. True when socket must be created instead.
bool Engine::ibverbsUnavailable(const Status& why) {
  if (params_.config.transport == "ibverbs") {
    LOOM_LOG(kWarn, kNet) << "LOOM_TRANSPORT=ibverbs: " << why.message()
                          << "; falling back to socket";
    params_.config.transport = "socket";
    return true;
  }
  // A malformed LOOM_IB_* value is the user's mistake, not the machine's: say it louder.
  if (why.code() != Code::kSystemError) {
    LOOM_LOG(kWarn, kNet) << "ibverbs not used: " << why.message() << "; sockets between hosts";
    return false;
  }
  static std::atomic<bool> said{false};
  if (!said.exchange(true))
    LOOM_LOG(kInfo, kNet) << "ibverbs not used (" << why.message() << "); sockets between hosts";
  return false;
}

Engine::~Engine() {
  closeAll(Deadline::afterMs(abort_ ? 0 : 1000));
}

Result<std::string> Engine::chooseTransport(int peer) const {
  const PeerInfo& p = peers_[peer];
  const bool sameHost = p.hostId == local_.hostId;
  const bool sameProcess = sameHost && p.pid == local_.pid;
  auto offered = [&](const std::string& name) {
    for (const auto& a : p.addresses)
      if (a.first == name) return transports_.count(name) > 0;
    return false;
  };
  const std::string& forced = params_.config.transport;
  if (forced != "auto") {
    const transport::Capabilities& caps = transports_.at(forced)->capabilities();
    if ((caps.sameProcessOnly && !sameProcess) || (caps.sameHostOnly && !sameHost) ||
        !offered(forced))
      return invalidUsage("LOOM_TRANSPORT=" + forced + " cannot reach rank " +
                          std::to_string(peer) + " (host " + p.hostName + ", pid " +
                          std::to_string(p.pid) + ")");
    return forced;
  }
  if (sameProcess && offered("loopback")) return std::string("loopback");
  if (sameHost && offered("shm")) return std::string("shm");
  if (!sameHost && offered("ibverbs")) return std::string("ibverbs");
  if (offered("socket")) return std::string("socket");
  return invalidUsage("no transport reaches rank " + std::to_string(peer));
}

Status Engine::setPeers(std::vector<PeerInfo> peers) {
  peers_ = std::move(peers);
  std::vector<std::string> hostIds;
  for (const PeerInfo& p : peers_)
    hostIds.push_back(p.hostId);
  hosts_ = topo::HostMap(hostIds);
  // A host is oversubscribed when its ranks outnumber the CPUs of the most confined of them.
  for (int h = 0; h < hosts_.nhosts(); ++h) {
    int cpus = INT32_MAX;
    for (int r : hosts_.ranksOn(h))
      cpus = std::min<int>(cpus, peers_[r].cpus);
    const bool over = static_cast<int>(hosts_.ranksOn(h).size()) > cpus;
    anyOversubscribed_ = anyOversubscribed_ || over;
    if (h == hosts_.hostOf(params_.rank)) oversubscribed_ = over;
  }
  peerTransport_.assign(peers_.size(), "self");
  for (int r = 0; r < static_cast<int>(peers_.size()); ++r) {
    if (r == params_.rank) continue;
    LOOM_ASSIGN_OR_RETURN(peerTransport_[r], chooseTransport(r));
  }
  LOOM_LOG(kInfo, kInit) << "rank " << params_.rank << "/" << params_.nranks << " on host "
                         << local_.hostName << ": " << hosts_.nhosts() << " host(s), "
                         << hosts_.ranksOn(hosts_.hostOf(params_.rank)).size()
                         << " rank(s) on this host";
  return Status::ok();
}

std::string Engine::transportOf(int peer) const {
  return peer >= 0 && peer < static_cast<int>(peerTransport_.size()) ? peerTransport_[peer] : "?";
}

std::string Engine::describePeer(int peer) const {
  if (peer < 0 || peer >= static_cast<int>(peers_.size())) return "rank " + std::to_string(peer);
  const PeerInfo& p = peers_[peer];
  return "rank " + std::to_string(peer) + " (host " + p.hostName + ", pid " +
         std::to_string(p.pid) + ", via " + peerTransport_[peer] + ")";
}

Result<transport::Connection*> Engine::connection(int peer, int lane) {
  auto key = std::make_pair(peer, lane);
  auto it = connections_.find(key);
  if (it != connections_.end()) return it->second.get();
  if (peer < 0 || peer >= params_.nranks || peer == params_.rank)
    return internalError("schedule addresses invalid peer " + std::to_string(peer) + " from rank " +
                         std::to_string(params_.rank));
  const std::string& name = peerTransport_[peer];
  std::string address;
  for (const auto& a : peers_[peer].addresses)
    if (a.first == name) address = a.second;
  Result<std::unique_ptr<transport::Connection>> c =
      transports_.at(name)->connect(peer, lane, address);
  if (!c.isOk()) return c.status().withContext("connecting to " + describePeer(peer));
  LOOM_LOG(kInfo, kNet) << "connection to " << describePeer(peer) << " lane " << lane;
  transport::Connection* raw = c->get();
  connections_.emplace(key, std::move(c).value());
  return raw;
}

Status Engine::progressTransports() {
  // Accepting is a system call per listening transport; a connection in its handshake drives
  // its own transport's accepts (shm, socket), so the engine-wide pass (accepts for peers this
  // rank has not reached yet, farewells) runs at most every kTransportPollNs. Without this an
  // 8-byte operation spent most of its time in accept4 returning EAGAIN.
  // The clock itself is read every 16th call only (a clock read can cost more than a pass on a
  // virtual machine).
  if (transportPolls_++ % 16 == 0) {
    const int64_t now = nowNs();
    if (now - lastTransportPollNs_ >= kTransportPollNs) {
      lastTransportPollNs_ = now;
      for (auto& [name, t] : transports_)
        LOOM_RETURN_IF_ERROR(t->progress());
    }
  }
  for (size_t i = 0; i < lingering_.size();) {
    transport::Connection* c = lingering_[i];
    LOOM_RETURN_IF_ERROR(c->progress());
    if (c->sendsCompleted() < c->sendsPosted()) {
      ++i;
    } else {
      lingering_[i] = lingering_.back();
      lingering_.pop_back();
    }
  }
  return Status::ok();
}

void Engine::linger(transport::Connection* conn) {
  if (std::find(lingering_.begin(), lingering_.end(), conn) == lingering_.end())
    lingering_.push_back(conn);
}

void Engine::addPollFds(std::vector<pollfd>* fds) const {
  fds->push_back(pollfd{doorbell_->eventFd(), POLLIN, 0});
  for (const auto& [name, t] : transports_)
    t->addPollFds(fds);
  for (const auto& [key, c] : connections_)
    c->addPollFds(fds);
}

void Engine::abort() {
  abort_.store(true);
  DoorbellRef::local(doorbell_).ring();
  // ring() only writes when armed; make sure a driver about to sleep also wakes.
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(doorbell_->eventFd(), &one, sizeof(one));
}

void Engine::abortSignalSafe() {
  abort_.store(true);
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(doorbell_->eventFd(), &one, sizeof(one));
}

void Engine::revokeAll() {
  lingering_.clear();
  for (auto& [key, c] : connections_) {
    Status s = c->close(Deadline::afterMs(0));
    if (!s.isOk())
      LOOM_LOG(kInfo, kNet) << "revoking the connection to " << describePeer(key.first)
                            << " after a failure: " << s.toString();
  }
}

void Engine::closeAll(Deadline deadline) {
  lingering_.clear();
  if (abort_) deadline = Deadline::afterMs(0);
  for (auto& [key, c] : connections_) {
    Status s = c->close(deadline);
    if (!s.isOk())
      LOOM_LOG(kInfo, kNet) << "closing connection to " << describePeer(key.first) << ": "
                            << s.toString();
  }
  connections_.clear();
}

}  // namespace loom::runtime
