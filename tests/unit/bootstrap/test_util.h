// Helpers shared by the bootstrap tests: secrets, loopback servers and clients.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "base/random.h"
#include "base/socket.h"
#include "bootstrap/tcp_store.h"
#include "bootstrap/unique_id.h"

namespace loom::bootstrap::testing {

inline constexpr int64_t kConnectMs = 5000;

inline Secret randomSecret() {
  Secret s{};
  EXPECT_TRUE(secureRandom(s.data(), s.size()).isOk());
  return s;
}

// A port nobody listens on (bound and released; good enough on a test machine).
inline uint16_t unusedPort() {
  SocketAddress a = SocketAddress::ipv4Loopback(0);
  Result<UniqueFd> fd = listenTcp(&a);
  EXPECT_TRUE(fd.isOk());
  return a.port();
}

inline std::shared_ptr<TcpStoreServer> startServer(const Secret& secret,
                                                   TcpStoreServer::Options options = {}) {
  Result<std::shared_ptr<TcpStoreServer>> s =
      TcpStoreServer::start(SocketAddress::ipv4Loopback(0), secret, options);
  EXPECT_TRUE(s.isOk()) << s.status().toString();
  return s.isOk() ? *s : nullptr;
}

inline UniqueId idFor(const TcpStoreServer& server, const Secret& secret) {
  UniqueId id;
  id.root = server.address();
  id.secret = secret;
  return id;
}

inline std::shared_ptr<TcpStoreClient> connectOrDie(const UniqueId& id, int rank, int nranks) {
  Result<std::shared_ptr<TcpStoreClient>> c =
      TcpStoreClient::connect(id, rank, nranks, Deadline::afterMs(kConnectMs));
  EXPECT_TRUE(c.isOk()) << c.status().toString();
  return c.isOk() ? *c : nullptr;
}

inline Bytes bytesOf(const std::string& s) {
  return Bytes(s.begin(), s.end());
}
inline std::string stringOf(const Bytes& b) {
  return std::string(b.begin(), b.end());
}

}  // namespace loom::bootstrap::testing
