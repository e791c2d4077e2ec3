#include "runtime/lanes.h"

#include <cstring>

namespace loom::runtime {

void LaneState::ensureStaging(int slots, size_t slotBytes) {
  if (staging && stagingSlotBytes == slotBytes && stagingSlots == slots) return;
  // Plain receives may be in flight (they land in user memory: the first receive-reduce on a lane
  // often follows one); a receive-reduce may not, since its slot is about to be freed.
  for (const PostedSlice& slice : inflight) {
    LOOM_CHECK(slice.staging < 0, "staging resized while a receive-reduce slice is in flight");
  }
  staging.reset(new std::byte[static_cast<size_t>(slots) * slotBytes]);
  std::memset(staging.get(), 0, static_cast<size_t>(slots) * slotBytes);  // fault in once
  stagingSlotBytes = slotBytes;
  stagingSlots = slots;
  freeStaging.clear();
  for (int k = slots - 1; k >= 0; --k)
    freeStaging.push_back(k);
}

Result<LaneState*> LaneTable::get(int peer, int lane, bool send) {
  auto key = std::make_tuple(peer, lane, send);
  auto it = lanes_.find(key);
  if (it != lanes_.end()) return it->second.get();
  LOOM_ASSIGN_OR_RETURN(transport::Connection * conn, connections_(peer, lane));
  auto state = std::make_unique<LaneState>();
  state->conn = conn;
  state->peer = peer;
  state->lane = lane;
  state->send = send;
  LaneState* raw = state.get();
  lanes_.emplace(key, std::move(state));
  return raw;
}

}  // namespace loom::runtime
