// TCP and Unix-domain socket helpers shared by the bootstrap and the socket/shm transports.
//
// Every call that can block takes a Deadline and an optional cancel flag (checked at least
// every 100 ms), so a dead peer or an abort never leaves a thread stuck in the kernel.
// Errors name the peer ("peer" argument: e.g. "rank 3 (10.0.0.2:4711)") and the syscall.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/fd.h"
#include "base/status.h"
#include "base/time.h"

namespace loom {

class SocketAddress {
 public:
  SocketAddress();
  // "1.2.3.4:5", "[::1]:5", "name:5" (resolved, IPv4 preferred). Port is required.
  static Result<SocketAddress> parse(std::string_view hostPort);
  static SocketAddress ipv4Loopback(uint16_t port);
  static Result<SocketAddress> fromRaw(const sockaddr* sa, socklen_t len);

  std::string toString() const;  // "1.2.3.4:5" / "[::1]:5"
  std::string host() const;
  uint16_t port() const;
  void setPort(uint16_t port);
  int family() const;
  bool isLoopback() const;
  const sockaddr* raw() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t length() const { return length_; }

  // Fixed 20-byte wire form: family (2, big-endian), port (2), address (16).
  static constexpr size_t kWireBytes = 20;
  void toWire(uint8_t out[kWireBytes]) const;
  static Result<SocketAddress> fromWire(const uint8_t in[kWireBytes]);

 private:
  sockaddr_storage storage_;
  socklen_t length_;
};

// The address this process advertises to peers. spec follows LOOM_SOCKET_IFNAME (NCCL's
// syntax): "" = the first interface that is up and not loopback (IPv4 first), falling back to
// loopback; "eth" = interfaces whose name starts with eth; "^docker" excludes; "=eth0" exact.
Result<SocketAddress> findInterfaceAddress(const std::string& spec);

// Binds and listens; a port of 0 picks a free one and *addr is updated with it.
Result<UniqueFd> listenTcp(SocketAddress* addr, int backlog = 256);
// Connects, retrying refused/unreachable attempts with backoff until the deadline (the peer's
// listener may not be up yet).
Result<UniqueFd> connectTcp(const SocketAddress& addr, Deadline deadline,
                            const std::atomic<bool>* cancel = nullptr);
// Waits for one incoming connection.
Result<UniqueFd> acceptTcp(int listenFd, Deadline deadline, SocketAddress* peer,
                           const std::atomic<bool>* cancel = nullptr);

// Blocking exact-length I/O on a (possibly non-blocking) socket. A closed connection is a
// RemoteError naming the peer; the deadline a Timeout; the cancel flag Aborted.
Status sendAll(int fd, const void* data, size_t bytes, Deadline deadline, const std::string& peer,
               const std::atomic<bool>* cancel = nullptr);
Status recvAll(int fd, void* data, size_t bytes, Deadline deadline, const std::string& peer,
               const std::atomic<bool>* cancel = nullptr);

Status setNonBlocking(int fd, bool on);
Status setNoDelay(int fd);
Status setBufferSizes(int fd, int bytes);

// Unix-domain sockets in the abstract namespace (no file is ever created, so nothing is left
// behind by a crash). name is the abstract name without the leading NUL.
Result<UniqueFd> listenUnix(const std::string& name, int backlog = 64);
Result<UniqueFd> connectUnix(const std::string& name, Deadline deadline,
                             const std::atomic<bool>* cancel = nullptr);
// Sends bytes plus file descriptors in one message (SCM_RIGHTS) / receives them. Messages are
// small (< 4 KiB) control messages; recvWithFds fails if the peer sent more fds than maxFds.
Status sendWithFds(int sock, const void* data, size_t bytes, const std::vector<int>& fds,
                   Deadline deadline, const std::string& peer);
Status recvWithFds(int sock, void* data, size_t bytes, std::vector<UniqueFd>* fds, size_t maxFds,
                   Deadline deadline, const std::string& peer);

// Waits until fd is readable (events=POLLIN) or writable; Timeout/Aborted as above.
Status pollOne(int fd, short events, Deadline deadline, const std::string& what,
               const std::atomic<bool>* cancel = nullptr);

}  // namespace loom
