// Bootstrap: one communicator's control plane (small, rare messages) over a shared Store.
//
// It gives every rank the few collectives that init, split and destroy need: allGather (peer
// addresses, host ids), barrier and broadcast. All keys live under "<prefix>/", so the
// communicators of one job share one Store without colliding; the prefix must be unique per
// communicator (e.g. derived from the unique id hash and a split counter), and no prefix may
// begin with another's "<prefix>/" (cleanup() erases everything under "<prefix>/").
//
// How allGather works (why it scales): every rank sets "<prefix>/ag/<seq>/<rank>"; rank 0 reads
// them all and publishes their concatenation as "<prefix>/ag/<seq>/all"; the other ranks read
// that one key. A store serves about 3N requests per allGather instead of N^2.
//
// Errors: every operation waits at most timeoutMs (from the call) and is cancelled when
// *abortFlag becomes true (Aborted). A Timeout names the operation, its sequence number and the
// ranks that did not arrive:  "allGather #3: ranks 2, 5 did not arrive within 30000 ms".
// Store errors (the root went away: RemoteError) pass through with the operation as context.
//
// Thread-safety: not thread-safe. Like any collective, every rank must call the same
// operations in the same order (sequence numbers pair them up), from one thread at a time.
// Lifetime: the Store is shared; abortFlag must outlive this object.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "bootstrap/store.h"

namespace loom::bootstrap {

class Bootstrap {
 public:
  Bootstrap(std::shared_ptr<Store> store, std::string prefix, int rank, int nranks,
            int64_t timeoutMs, const std::atomic<bool>* abortFlag = nullptr);

  int rank() const { return rank_; }
  int nranks() const { return nranks_; }
  const std::string& prefix() const { return prefix_; }
  Store& store() { return *store_; }

  // Every rank's value, indexed by rank (this rank's own value included).
  Result<std::vector<Bytes>> allGather(const Bytes& mine);
  // Returns once every rank has entered the barrier.
  Status barrier();
  // root's value on every rank (value is ignored on the others). InvalidArgument if root is not
  // a rank.
  Result<Bytes> broadcast(const Bytes& value, int root);
  // Erases this communicator's keys once every rank has called cleanup(); never blocks (the
  // last rank to arrive erases). Call it once, after this rank's last operation.
  Status cleanup();

 private:
  Result<std::vector<Bytes>> gather(const char* what, uint64_t seq, const std::string& base,
                                    const Bytes& mine, int64_t deadlineNs);
  Result<std::vector<Bytes>> readPieces(const char* what, uint64_t seq, const std::string& base,
                                        int64_t deadlineNs);
  Status missingRanks(const char* what, uint64_t seq, const std::string& base, const Status& cause);

  std::shared_ptr<Store> store_;
  std::string prefix_;
  int rank_;
  int nranks_;
  int64_t timeoutMs_;
  const std::atomic<bool>* abortFlag_;
  uint64_t allGatherSeq_ = 0;
  uint64_t barrierSeq_ = 0;
  uint64_t broadcastSeq_ = 0;
  bool cleanedUp_ = false;
};

// "ranks 2, 5" / "rank 3" (for error messages).
std::string formatRanks(const std::vector<int>& ranks);

}  // namespace loom::bootstrap
