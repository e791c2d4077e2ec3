// Store: the key-value rendezvous every communicator's control plane runs on.
//
// Keys are strings, values are byte strings. set() never blocks for long; get() waits until
// the key exists (bounded by the deadline). A Store is shared by a job's communicators (splits
// use prefixes), so implementations are thread-safe.
//
// Implementations
//   InMemoryStore   - ranks as threads in one process (loomCommInitAll, tests).
//   TcpStoreClient  - talks to a TcpStoreServer (the rendezvous root) over an authenticated
//                     TCP connection (tcp_store.h).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/time.h"

namespace loom::bootstrap {

using Bytes = std::vector<uint8_t>;

class Store {
 public:
  virtual ~Store() = default;
  virtual Status set(const std::string& key, const Bytes& value) = 0;
  // Waits until key exists; Timeout (naming the key) at the deadline, Aborted if *cancel.
  virtual Result<Bytes> get(const std::string& key, Deadline deadline,
                            const std::atomic<bool>* cancel = nullptr) = 0;
  // Atomically adds delta to the integer stored at key (absent = 0); returns the new value.
  virtual Result<int64_t> add(const std::string& key, int64_t delta) = 0;
  // Removes every key that starts with prefix (a communicator cleaning up after itself).
  virtual Status erasePrefix(const std::string& prefix) = 0;
  // The value if key exists now, nullopt if not; never waits for the key to appear (a remote
  // store still makes one round trip). Used to name the ranks that are missing at a timeout.
  // The default asks get() with an already-expired deadline.
  virtual Result<std::optional<Bytes>> tryGet(const std::string& key);
};

class InMemoryStore final : public Store {
 public:
  Status set(const std::string& key, const Bytes& value) override;
  Result<Bytes> get(const std::string& key, Deadline deadline,
                    const std::atomic<bool>* cancel = nullptr) override;
  Result<int64_t> add(const std::string& key, int64_t delta) override;
  Status erasePrefix(const std::string& prefix) override;
  Result<std::optional<Bytes>> tryGet(const std::string& key) override;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Bytes> data_;
};

}  // namespace loom::bootstrap
