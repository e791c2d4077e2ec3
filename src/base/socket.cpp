#include "base/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include "base/log.h"

namespace loom {

namespace {

constexpr int kPollSliceMs = 100;

// Poll until ready, the deadline, or cancellation.
Status waitReady(int fd, short events, Deadline deadline, const std::string& what,
                 const std::atomic<bool>* cancel) {
  for (;;) {
    if (cancel && cancel->load(std::memory_order_relaxed)) return abortedError(what + ": aborted");
    int left = deadline.remainingMs();
    if (left == 0) return timeoutError(what + ": timed out");
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, left < kPollSliceMs ? left : kPollSliceMs);
    if (rc < 0) {
      if (errno == EINTR) continue;
      return systemErrorFromErrno(what + ": poll", errno);
    }
    if (rc > 0) return Status::ok();
  }
}

bool matchesIfname(const std::string& spec, const char* name) {
  if (spec.empty()) return true;
  std::string s = spec;
  bool exclude = false, exact = false;
  if (s[0] == '^') {
    exclude = true;
    s.erase(0, 1);
  }
  if (!s.empty() && s[0] == '=') {
    exact = true;
    s.erase(0, 1);
  }
  bool any = false;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    std::string item = s.substr(start, end - start);
    if (!item.empty()) {
      bool m = exact ? item == name : std::strncmp(name, item.c_str(), item.size()) == 0;
      any = any || m;
    }
    start = end + 1;
  }
  return exclude ? !any : any;
}

}  // namespace

SocketAddress::SocketAddress() : length_(0) {
  std::memset(&storage_, 0, sizeof(storage_));
}

SocketAddress SocketAddress::ipv4Loopback(uint16_t port) {
  SocketAddress a;
  auto* in = reinterpret_cast<sockaddr_in*>(&a.storage_);
  in->sin_family = AF_INET;
  in->sin_port = htons(port);
  in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.length_ = sizeof(sockaddr_in);
  return a;
}

Result<SocketAddress> SocketAddress::fromRaw(const sockaddr* sa, socklen_t len) {
  if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
    return invalidArgument("address family " + std::to_string(sa->sa_family) +
                           " is not IPv4 or IPv6");
  if (len > sizeof(sockaddr_storage)) return invalidArgument("socket address too long");
  SocketAddress a;
  std::memcpy(&a.storage_, sa, len);
  a.length_ = len;
  return a;
}

Result<SocketAddress> SocketAddress::parse(std::string_view text) {
  std::string s(text);
  std::string host, port;
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':')
      return invalidArgument("'" + s + "' is not [ipv6]:port");
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    size_t colon = s.rfind(':');
    if (colon == std::string::npos || colon == 0)
      return invalidArgument("'" + s + "' is not host:port");
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  char* end = nullptr;
  long p = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || p < 0 || p > 65535)
    return invalidArgument("'" + s + "': port '" + port + "' is not in 0..65535");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0) return systemError("cannot resolve '" + host + "': " + gai_strerror(rc));
  const addrinfo* pick = res;
  for (const addrinfo* r = res; r; r = r->ai_next)
    if (r->ai_family == AF_INET) {
      pick = r;
      break;
    }
  Result<SocketAddress> a = fromRaw(pick->ai_addr, pick->ai_addrlen);
  freeaddrinfo(res);
  if (!a.isOk()) return a;
  a->setPort(static_cast<uint16_t>(p));
  return a;
}

std::string SocketAddress::host() const {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (family() == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf,
              sizeof(buf));
  else if (family() == AF_INET6)
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf,
              sizeof(buf));
  return buf;
}

std::string SocketAddress::toString() const {
  if (family() == AF_INET6) return "[" + host() + "]:" + std::to_string(port());
  return host() + ":" + std::to_string(port());
}

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

void SocketAddress::setPort(uint16_t port) {
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port);
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port);
}

int SocketAddress::family() const {
  return storage_.ss_family;
}

bool SocketAddress::isLoopback() const {
  if (family() == AF_INET)
    return (ntohl(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr.s_addr) >> 24) == 127;
  if (family() == AF_INET6)
    return IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr);
  return false;
}

void SocketAddress::toWire(uint8_t out[kWireBytes]) const {
  std::memset(out, 0, kWireBytes);
  uint16_t fam = static_cast<uint16_t>(family());
  out[0] = static_cast<uint8_t>(fam >> 8);
  out[1] = static_cast<uint8_t>(fam);
  uint16_t p = port();
  out[2] = static_cast<uint8_t>(p >> 8);
  out[3] = static_cast<uint8_t>(p);
  if (family() == AF_INET)
    std::memcpy(out + 4, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, 4);
  else if (family() == AF_INET6)
    std::memcpy(out + 4, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, 16);
}

Result<SocketAddress> SocketAddress::fromWire(const uint8_t in[kWireBytes]) {
  uint16_t fam = static_cast<uint16_t>(in[0] << 8 | in[1]);
  uint16_t p = static_cast<uint16_t>(in[2] << 8 | in[3]);
  SocketAddress a;
  if (fam == AF_INET) {
    auto* s = reinterpret_cast<sockaddr_in*>(&a.storage_);
    s->sin_family = AF_INET;
    s->sin_port = htons(p);
    std::memcpy(&s->sin_addr, in + 4, 4);
    a.length_ = sizeof(sockaddr_in);
  } else if (fam == AF_INET6) {
    auto* s = reinterpret_cast<sockaddr_in6*>(&a.storage_);
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(p);
    std::memcpy(&s->sin6_addr, in + 4, 16);
    a.length_ = sizeof(sockaddr_in6);
  } else {
    return invalidArgument("wire address has unknown family " + std::to_string(fam));
  }
  return a;
}

Result<SocketAddress> findInterfaceAddress(const std::string& spec) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return systemErrorFromErrno("getifaddrs", errno);
  SocketAddress best, loop;
  bool haveBest = false, haveLoop = false;
  for (int pass = 0; pass < 2 && !haveBest; ++pass) {
    int fam = pass == 0 ? AF_INET : AF_INET6;
    for (ifaddrs* i = list; i; i = i->ifa_next) {
      if (!i->ifa_addr || i->ifa_addr->sa_family != fam || !(i->ifa_flags & IFF_UP)) continue;
      if (!matchesIfname(spec, i->ifa_name)) continue;
      socklen_t len = fam == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
      Result<SocketAddress> a = SocketAddress::fromRaw(i->ifa_addr, len);
      if (!a.isOk()) continue;
      if (fam == AF_INET6 &&
          IN6_IS_ADDR_LINKLOCAL(&reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr))
        continue;
      if (i->ifa_flags & IFF_LOOPBACK) {
        if (!haveLoop) loop = *a, haveLoop = true;
        continue;
      }
      best = *a;
      haveBest = true;
      break;
    }
  }
  freeifaddrs(list);
  if (haveBest) return best;
  if (haveLoop) return loop;
  if (!spec.empty())
    return invalidArgument("LOOM_SOCKET_IFNAME='" + spec + "' matches no interface that is up");
  return SocketAddress::ipv4Loopback(0);
}

Result<UniqueFd> listenTcp(SocketAddress* addr, int backlog) {
  UniqueFd fd(::socket(addr->family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return systemErrorFromErrno("socket", errno);
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd.get(), addr->raw(), addr->length()) != 0)
    return systemErrorFromErrno("bind " + addr->toString(), errno);
  if (::listen(fd.get(), backlog) != 0)
    return systemErrorFromErrno("listen " + addr->toString(), errno);
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return systemErrorFromErrno("getsockname", errno);
  addr->setPort(SocketAddress::fromRaw(reinterpret_cast<sockaddr*>(&ss), len)->port());
  return fd;
}

Result<UniqueFd> connectTcp(const SocketAddress& addr, Deadline deadline,
                            const std::atomic<bool>* cancel) {
  int backoffMs = 1;
  const std::string what = "connect to " + addr.toString();
  for (;;) {
    UniqueFd fd(::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd.valid()) return systemErrorFromErrno("socket", errno);
    int rc = ::connect(fd.get(), addr.raw(), addr.length());
    int err = rc == 0 ? 0 : errno;
    if (err == EINPROGRESS) {
      LOOM_RETURN_IF_ERROR(waitReady(fd.get(), POLLOUT, deadline, what, cancel));
      socklen_t len = sizeof(err);
      ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    }
    if (err == 0) {
      LOOM_RETURN_IF_ERROR(setNonBlocking(fd.get(), false));
      return fd;
    }
    bool retry = err == ECONNREFUSED || err == ETIMEDOUT || err == ENETUNREACH ||
                 err == EHOSTUNREACH || err == ECONNRESET || err == EAGAIN;
    if (!retry) return systemErrorFromErrno(what, err);
    if (cancel && cancel->load()) return abortedError(what + ": aborted");
    if (deadline.remainingMs() <= backoffMs)
      return timeoutError(
          what + ": no listener before the deadline (last error: " + std::strerror(err) + ")");
    ::usleep(static_cast<useconds_t>(backoffMs) * 1000);
    backoffMs = backoffMs < 100 ? backoffMs * 2 : 100;
  }
}

Result<UniqueFd> acceptTcp(int listenFd, Deadline deadline, SocketAddress* peer,
                           const std::atomic<bool>* cancel) {
  for (;;) {
    LOOM_RETURN_IF_ERROR(waitReady(listenFd, POLLIN, deadline, "accept", cancel));
    sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = ::accept4(listenFd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) continue;
      return systemErrorFromErrno("accept", errno);
    }
    if (peer) {
      Result<SocketAddress> a = SocketAddress::fromRaw(reinterpret_cast<sockaddr*>(&ss), len);
      if (a.isOk()) *peer = *a;
    }
    return UniqueFd(fd);
  }
}

Status sendAll(int fd, const void* data, size_t bytes, Deadline deadline, const std::string& peer,
               const std::atomic<bool>* cancel) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (bytes > 0) {
    ssize_t n = ::send(fd, p, bytes, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      p += n;
      bytes -= static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      LOOM_RETURN_IF_ERROR(waitReady(fd, POLLOUT, deadline, "send to " + peer, cancel));
      continue;
    }
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
      return remoteError("connection to " + peer + " closed by the peer while sending");
    return systemErrorFromErrno("send to " + peer, errno);
  }
  return Status::ok();
}

Status recvAll(int fd, void* data, size_t bytes, Deadline deadline, const std::string& peer,
               const std::atomic<bool>* cancel) {
  auto* p = static_cast<uint8_t*>(data);
  size_t want = bytes;
  while (bytes > 0) {
    ssize_t n = ::recv(fd, p, bytes, MSG_DONTWAIT);
    if (n > 0) {
      p += n;
      bytes -= static_cast<size_t>(n);
      continue;
    }
    if (n == 0)
      return remoteError("connection to " + peer + " closed by the peer (received " +
                         std::to_string(want - bytes) + " of " + std::to_string(want) + " bytes)");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      LOOM_RETURN_IF_ERROR(waitReady(fd, POLLIN, deadline, "receive from " + peer, cancel));
      continue;
    }
    if (errno == ECONNRESET) return remoteError("connection to " + peer + " reset by the peer");
    return systemErrorFromErrno("recv from " + peer, errno);
  }
  return Status::ok();
}

Status setNonBlocking(int fd, bool on) {
  int flags = ::fcntl(fd, F_GETFL, 0);
  if (flags < 0) return systemErrorFromErrno("fcntl(F_GETFL)", errno);
  flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (::fcntl(fd, F_SETFL, flags) != 0) return systemErrorFromErrno("fcntl(F_SETFL)", errno);
  return Status::ok();
}

Status setNoDelay(int fd) {
  int one = 1;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
    return systemErrorFromErrno("setsockopt(TCP_NODELAY)", errno);
  return Status::ok();
}

Status setBufferSizes(int fd, int bytes) {
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
  return Status::ok();
}

namespace {
Result<sockaddr_un> abstractAddress(const std::string& name, socklen_t* len) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (name.size() + 1 > sizeof(a.sun_path))
    return invalidArgument("unix socket name '" + name + "' is too long");
  a.sun_path[0] = '\0';
  std::memcpy(a.sun_path + 1, name.data(), name.size());
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return a;
}
}  // namespace

Result<UniqueFd> listenUnix(const std::string& name, int backlog) {
  socklen_t len;
  LOOM_ASSIGN_OR_RETURN(sockaddr_un a, abstractAddress(name, &len));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return systemErrorFromErrno("socket(AF_UNIX)", errno);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), len) != 0)
    return systemErrorFromErrno("bind unix socket @" + name, errno);
  if (::listen(fd.get(), backlog) != 0)
    return systemErrorFromErrno("listen unix socket @" + name, errno);
  return fd;
}

Result<UniqueFd> connectUnix(const std::string& name, Deadline deadline,
                             const std::atomic<bool>* cancel) {
  socklen_t len;
  LOOM_ASSIGN_OR_RETURN(sockaddr_un a, abstractAddress(name, &len));
  int backoffMs = 1;
  for (;;) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return systemErrorFromErrno("socket(AF_UNIX)", errno);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), len) == 0) return fd;
    int err = errno;
    if (err != ECONNREFUSED && err != ENOENT && err != EAGAIN)
      return systemErrorFromErrno("connect unix socket @" + name, err);
    if (cancel && cancel->load()) return abortedError("connect @" + name + ": aborted");
    if (deadline.remainingMs() <= backoffMs)
      return timeoutError("connect unix socket @" + name + ": nobody listening");
    ::usleep(static_cast<useconds_t>(backoffMs) * 1000);
    backoffMs = backoffMs < 50 ? backoffMs * 2 : 50;
  }
}

Status sendWithFds(int sock, const void* data, size_t bytes, const std::vector<int>& fds,
                   Deadline deadline, const std::string& peer) {
  iovec iov{const_cast<void*>(data), bytes};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  for (;;) {
    ssize_t n = ::sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n == static_cast<ssize_t>(bytes)) return Status::ok();
    if (n >= 0) return systemError("short sendmsg to " + peer);
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      LOOM_RETURN_IF_ERROR(waitReady(sock, POLLOUT, deadline, "sendmsg to " + peer, nullptr));
      continue;
    }
    if (errno == EPIPE || errno == ECONNRESET)
      return remoteError("unix connection to " + peer + " closed by the peer");
    return systemErrorFromErrno("sendmsg to " + peer, errno);
  }
}

Status recvWithFds(int sock, void* data, size_t bytes, std::vector<UniqueFd>* fds, size_t maxFds,
                   Deadline deadline, const std::string& peer) {
  LOOM_RETURN_IF_ERROR(waitReady(sock, POLLIN, deadline, "recvmsg from " + peer, nullptr));
  iovec iov{data, bytes};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * (maxFds + 1)));
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return systemErrorFromErrno("recvmsg from " + peer, errno);
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds->emplace_back(fd);  // owned now, closed on every error path below
    }
  }
  if (n == 0) return remoteError("unix connection to " + peer + " closed by the peer");
  if (static_cast<size_t>(n) != bytes)
    return remoteError("short control message from " + peer + ": " + std::to_string(n) + " of " +
                       std::to_string(bytes) + " bytes");
  if ((msg.msg_flags & MSG_CTRUNC) || fds->size() > maxFds)
    return remoteError(peer + " sent more file descriptors than expected (" +
                       std::to_string(maxFds) + ")");
  return Status::ok();
}

Status pollOne(int fd, short events, Deadline deadline, const std::string& what,
               const std::atomic<bool>* cancel) {
  return waitReady(fd, events, deadline, what, cancel);
}

}  // namespace loom
