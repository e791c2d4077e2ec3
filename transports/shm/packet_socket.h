// Non-blocking Unix SOCK_SEQPACKET sockets in the abstract namespace: the shm transport's
// control channel (handshake, descriptor passing, then liveness).
//
// SEQPACKET keeps message boundaries, so each handshake message (with its descriptors) is sent
// and received whole by one call: no framing, no partial reads. The abstract namespace leaves
// no file behind. None of these functions blocks (base/socket.h's helpers do, by design).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <vector>

#include "base/fd.h"
#include "base/status.h"

namespace loom::transport::shm {

Result<UniqueFd> listenPacket(const std::string& name);

enum class ConnectState { kConnected, kRetry };
// One non-blocking connect attempt. kRetry when nobody listens yet or the backlog is full.
Status connectPacket(const std::string& name, UniqueFd* out, ConnectState* state);

// Accepts one pending connection; an invalid fd when there is none.
Result<UniqueFd> acceptPacket(int listenFd);

// Sends one message with descriptors. The socket buffer of a fresh connection always has room
// for a handshake message, so "would block" is reported as an error rather than retried.
Status sendPacket(int fd, const void* data, size_t bytes, const std::vector<int>& fds,
                  const std::string& peer);

enum class RecvState { kMessage, kWouldBlock, kClosed };
// Receives one message of exactly `bytes` (anything else is a RemoteError) with at most
// maxFds descriptors (which are owned by *fds on return, also on error).
Status recvPacket(int fd, void* data, size_t bytes, std::vector<UniqueFd>* fds, size_t maxFds,
                  const std::string& peer, RecvState* state);

// The pid of the process at the other end, as this process's pid namespace sees it (from the
// kernel, so it cannot be forged by the peer).
Result<pid_t> peerPid(int fd);

// Whether `fd` is an eventfd (checked before we write to a descriptor a peer sent us).
bool isEventFd(int fd);

}  // namespace loom::transport::shm
