// Lanes: the executor's per-connection-direction state, kept by the communicator across
// operations so that nothing on the per-operation path allocates: the in-flight queue and the
// receive-reduce staging slots (LOOM_PIPELINE_DEPTH x LOOM_SLICE_BYTES, allocated and touched
// once, on first use of the lane).
//
// A lane is used by one Execution at a time: a communicator runs its units one after another,
// except that a group's Send/Recv unit runs beside its collectives, on its own lane number
// (op.h), so the two never share a LaneState. Between executions every in-flight queue is
// empty (an execution ends only when all its slices completed).
//
// Thread-safety: only the thread driving the communicator (engine mutex held) touches lanes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "base/status.h"
#include "transports/transport.h"

namespace loom::runtime {

struct PostedSlice {
  uint32_t program;
  uint32_t step;
  uint32_t slice;
  uint64_t ordinal;  // the message's position on the connection direction
  int staging;       // staging slot for a receive-reduce, else -1
  bool empty;        // a zero-byte message
};

struct LaneState {
  transport::Connection* conn = nullptr;
  int peer = 0;
  int lane = 0;
  bool send = false;
  std::deque<PostedSlice> inflight;
  std::vector<int> freeStaging;
  std::unique_ptr<std::byte[]> staging;
  size_t stagingSlotBytes = 0;
  int stagingSlots = 0;
  bool blockedThisPass = false;
  // The last progress heard on this lane, for timeout messages: when a message last completed
  // (0 = never) and how many have completed over the communicator's life.
  int64_t lastCompletionNs = 0;
  uint64_t completedMessages = 0;

  // Staging slot i's memory, allocating (and faulting in) every slot on first use.
  std::byte* stagingSlot(int slot) {
    return staging.get() + static_cast<size_t>(slot) * stagingSlotBytes;
  }
  void ensureStaging(int slots, size_t slotBytes);
};

using ConnectionProvider = std::function<Result<transport::Connection*>(int peer, int lane)>;

class LaneTable {
 public:
  explicit LaneTable(ConnectionProvider connections) : connections_(std::move(connections)) {}
  // The lane for (peer, lane, direction), created (and its connection with it) on first use.
  Result<LaneState*> get(int peer, int lane, bool send);

 private:
  ConnectionProvider connections_;
  std::map<std::tuple<int, int, bool>, std::unique_ptr<LaneState>> lanes_;
};

}  // namespace loom::runtime
