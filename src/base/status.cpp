#include "base/status.h"

#include <cstring>

namespace loom {

const char* codeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kCudaError:
      return "CudaError";
    case Code::kSystemError:
      return "SystemError";
    case Code::kInternal:
      return "InternalError";
    case Code::kInvalidArgument:
      return "InvalidArgument";
    case Code::kInvalidUsage:
      return "InvalidUsage";
    case Code::kRemoteError:
      return "RemoteError";
    case Code::kInProgress:
      return "InProgress";
    case Code::kTimeout:
      return "Timeout";
    case Code::kAborted:
      return "Aborted";
  }
  return "UnknownCode";
}

Status::Status(Code code, std::string message) {
  LOOM_CHECK(code != Code::kOk, "an OK Status carries no message");
  state_.reset(new State{code, std::move(message)});
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return state_ ? state_->message : kEmpty;
}

std::string Status::toString() const {
  if (isOk()) return "OK";
  return std::string(codeName(state_->code)) + ": " + state_->message;
}

Status Status::withContext(std::string_view context) const {
  if (isOk()) return Status();
  return Status(state_->code, std::string(context) + ": " + state_->message);
}

Status invalidArgument(std::string m) {
  return Status(Code::kInvalidArgument, std::move(m));
}
Status invalidUsage(std::string m) {
  return Status(Code::kInvalidUsage, std::move(m));
}
Status systemError(std::string m) {
  return Status(Code::kSystemError, std::move(m));
}
Status remoteError(std::string m) {
  return Status(Code::kRemoteError, std::move(m));
}
Status internalError(std::string m) {
  return Status(Code::kInternal, std::move(m));
}
Status timeoutError(std::string m) {
  return Status(Code::kTimeout, std::move(m));
}
Status abortedError(std::string m) {
  return Status(Code::kAborted, std::move(m));
}
Status inProgress(std::string m) {
  return Status(Code::kInProgress, std::move(m));
}

Status systemErrorFromErrno(std::string_view what, int err) {
  char buf[128];
  // GNU strerror_r returns the message pointer (which may not be buf).
  const char* text = strerror_r(err, buf, sizeof(buf));
  return Status(Code::kSystemError,
                std::string(what) + ": " + text + " (errno " + std::to_string(err) + ")");
}

}  // namespace loom
