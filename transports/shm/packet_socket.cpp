#include "transports/shm/packet_socket.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace loom::transport::shm {

namespace {

Status abstractAddress(const std::string& name, sockaddr_un* a, socklen_t* len) {
  if (name.empty() || name.size() + 1 > sizeof(a->sun_path))
    return invalidArgument("unix socket name '" + name + "' is empty or too long");
  std::memset(a, 0, sizeof(*a));
  a->sun_family = AF_UNIX;
  std::memcpy(a->sun_path + 1, name.data(), name.size());  // leading NUL: abstract namespace
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return Status::ok();
}

UniqueFd newSocket() {
  return UniqueFd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
}

}  // namespace

Result<UniqueFd> listenPacket(const std::string& name) {
  sockaddr_un a;
  socklen_t len;
  LOOM_RETURN_IF_ERROR(abstractAddress(name, &a, &len));
  UniqueFd fd = newSocket();
  if (!fd.valid()) return systemErrorFromErrno("socket(AF_UNIX, SOCK_SEQPACKET)", errno);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), len) != 0)
    return systemErrorFromErrno("bind unix socket @" + name, errno);
  if (::listen(fd.get(), SOMAXCONN) != 0)
    return systemErrorFromErrno("listen on unix socket @" + name, errno);
  return fd;
}

Status connectPacket(const std::string& name, UniqueFd* out, ConnectState* state) {
  sockaddr_un a;
  socklen_t len;
  LOOM_RETURN_IF_ERROR(abstractAddress(name, &a, &len));
  UniqueFd fd = newSocket();
  if (!fd.valid()) return systemErrorFromErrno("socket(AF_UNIX, SOCK_SEQPACKET)", errno);
  int rc;
  do {
    rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), len);
  } while (rc != 0 && errno == EINTR);
  if (rc == 0) {
    *out = std::move(fd);
    *state = ConnectState::kConnected;
    return Status::ok();
  }
  if (errno == ECONNREFUSED || errno == EAGAIN || errno == ENOENT) {
    *state = ConnectState::kRetry;
    return Status::ok();
  }
  return systemErrorFromErrno("connect to unix socket @" + name, errno);
}

Result<UniqueFd> acceptPacket(int listenFd) {
  for (;;) {
    int fd = ::accept4(listenFd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) return UniqueFd(fd);
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EAGAIN) return UniqueFd();
    return systemErrorFromErrno("accept on shm listening socket", errno);
  }
}

Status sendPacket(int fd, const void* data, size_t bytes, const std::vector<int>& fds,
                  const std::string& peer) {
  iovec iov{const_cast<void*>(data), bytes};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
  if (fds.size() > 8) return internalError("sendPacket: too many descriptors");
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do {
    n = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(bytes)) return Status::ok();
  if (n >= 0) return systemError("short handshake message to " + peer);
  if (errno == EPIPE || errno == ECONNRESET)
    return remoteError(peer + " closed the shared-memory connection during the handshake");
  return systemErrorFromErrno("sendmsg to " + peer, errno);
}

Status recvPacket(int fd, void* data, size_t bytes, std::vector<UniqueFd>* fds, size_t maxFds,
                  const std::string& peer, RecvState* state) {
  iovec iov{data, bytes};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = ::recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN) {
    *state = RecvState::kWouldBlock;
    return Status::ok();
  }
  if (n < 0 && errno == ECONNRESET) n = 0;
  if (n < 0) return systemErrorFromErrno("recvmsg from " + peer, errno);
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int received;
      std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds->emplace_back(received);  // owned from here on, also on the error paths below
    }
  }
  if (n == 0) {
    *state = RecvState::kClosed;
    return Status::ok();
  }
  *state = RecvState::kMessage;
  if (static_cast<size_t>(n) != bytes || (msg.msg_flags & MSG_TRUNC))
    return remoteError("malformed handshake message from " + peer + ": " + std::to_string(n) +
                       " bytes, expected " + std::to_string(bytes));
  if ((msg.msg_flags & MSG_CTRUNC) || fds->size() > maxFds)
    return remoteError(peer + " sent more file descriptors than expected (" +
                       std::to_string(maxFds) + ")");
  return Status::ok();
}

Result<pid_t> peerPid(int fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return systemErrorFromErrno("getsockopt(SO_PEERCRED)", errno);
  return cred.pid;
}

bool isEventFd(int fd) {
  char link[64];
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(path.c_str(), link, sizeof(link) - 1);
  if (n <= 0) return false;
  link[n] = '\0';
  return std::strcmp(link, "anon_inode:[eventfd]") == 0;
}

}  // namespace loom::transport::shm
