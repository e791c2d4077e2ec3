#include "transports/ibverbs/connection_state.h"

namespace loom::transport::ibverbs {

const char* phaseName(Phase phase) {
  switch (phase) {
    case Phase::kInit:
      return "INIT";
    case Phase::kExchange:
      return "exchange";
    case Phase::kRtr:
      return "RTR";
    case Phase::kRts:
      return "RTS";
    case Phase::kOpen:
      return "open";
    case Phase::kClosed:
      return "closed";
    case Phase::kFailed:
      return "failed";
  }
  return "?";
}

ConnectionState::ConnectionState(std::string who, std::string where)
    : who_(std::move(who)), where_(std::move(where)) {}

std::string ConnectionState::describe() const {
  return "connection to " + who_ + " on " + where_;
}

Status ConnectionState::advance(Phase next) {
  const bool forward = static_cast<int>(next) == static_cast<int>(phase_) + 1 &&
                       next != Phase::kClosed && next != Phase::kFailed;
  if (!forward)
    return internalError(describe() + ": illegal transition " + phaseName(phase_) + " -> " +
                         phaseName(next));
  phase_ = next;
  return Status::ok();
}

Status ConnectionState::fail(const Status& error) {
  if (phase_ == Phase::kClosed) return Status::ok();
  if (phase_ != Phase::kFailed) {
    error_ = remoteError(describe() + " (" + phaseName(phase_) + "): " + error.message());
    phase_ = Phase::kFailed;
  }
  return error_;
}

void ConnectionState::close() {
  if (phase_ != Phase::kFailed) phase_ = Phase::kClosed;
}

Status ConnectionState::usable() const {
  if (phase_ == Phase::kFailed) return error_;
  if (phase_ == Phase::kClosed) return invalidUsage(describe() + " is closed");
  return Status::ok();
}

}  // namespace loom::transport::ibverbs
