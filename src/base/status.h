// Status and Result<T>: how every fallible function in loom reports failure (no exceptions).
//
// A Status is a code plus a message that makes the failure actionable (the syscall and errno,
// the peer rank and address, expected vs seen bytes, the variable to change). The codes mirror
// the C ABI (loomResult_t) and NCCL so an error crosses the API boundary without translation
// tables. An OK Status holds no allocation, so returning success is as cheap as an int.
//
// Thread-safety: Status and Result are values; distinct objects may be used from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "base/assert.h"

namespace loom {

// Values are those of loomResult_t in include/loom/loom.h; a static_assert there keeps them equal.
enum class Code : int {
  kOk = 0,
  kCudaError = 1,
  kSystemError = 2,
  kInternal = 3,
  kInvalidArgument = 4,
  kInvalidUsage = 5,
  kRemoteError = 6,
  kInProgress = 7,
  kTimeout = 8,
  kAborted = 9,
};

const char* codeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message);
  Status(const Status& other) : state_(other.state_ ? new State(*other.state_) : nullptr) {}
  Status& operator=(const Status& other) {
    if (this != &other) state_.reset(other.state_ ? new State(*other.state_) : nullptr);
    return *this;
  }
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status ok() { return Status(); }

  bool isOk() const { return state_ == nullptr; }
  Code code() const { return state_ ? state_->code : Code::kOk; }
  // The message without the code name; empty for OK.
  const std::string& message() const;
  // "InvalidArgument: count 3 exceeds ...", or "OK".
  std::string toString() const;

  // Returns a Status with the same code and "context: message". OK stays OK.
  Status withContext(std::string_view context) const;

  void ignoreError() const {}

 private:
  struct State {
    Code code;
    std::string message;
  };
  std::unique_ptr<State> state_;
};

// Factories, one per code, so call sites read as the failure they describe.
Status invalidArgument(std::string message);
Status invalidUsage(std::string message);
Status systemError(std::string message);
// Formats "<what>: <strerror(err)> (errno <err>)".
Status systemErrorFromErrno(std::string_view what, int err);
Status remoteError(std::string message);
Status internalError(std::string message);
Status timeoutError(std::string message);
Status abortedError(std::string message);
Status inProgress(std::string message);

// Result<T>: a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : status_(), has_value_(true) { new (&storage_) T(std::move(value)); }
  Result(Status status) : status_(std::move(status)), has_value_(false) {
    LOOM_CHECK(!status_.isOk(), "Result constructed from an OK Status without a value");
  }
  Result(const Result& other) : status_(other.status_), has_value_(other.has_value_) {
    if (has_value_) new (&storage_) T(other.value());
  }
  Result(Result&& other) noexcept(std::is_nothrow_move_constructible_v<T>)
      : status_(std::move(other.status_)), has_value_(other.has_value_) {
    if (has_value_) new (&storage_) T(std::move(other.value()));
  }
  Result& operator=(Result other) {
    destroy();
    status_ = std::move(other.status_);
    has_value_ = other.has_value_;
    if (has_value_) new (&storage_) T(std::move(other.value()));
    return *this;
  }
  ~Result() { destroy(); }

  bool isOk() const { return has_value_; }
  const Status& status() const { return status_; }
  Status takeStatus() { return std::move(status_); }

  T& value() & {
    LOOM_CHECK(has_value_, "Result::value() on an error: " + status_.toString());
    return *std::launder(reinterpret_cast<T*>(&storage_));
  }
  const T& value() const& {
    LOOM_CHECK(has_value_, "Result::value() on an error: " + status_.toString());
    return *std::launder(reinterpret_cast<const T*>(&storage_));
  }
  T&& value() && { return std::move(value()); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  void destroy() {
    if (has_value_) value().~T();
    has_value_ = false;
  }
  Status status_;
  bool has_value_;
  alignas(T) unsigned char storage_[sizeof(T)];
};

}  // namespace loom

#define LOOM_STATUS_CONCAT_INNER(a, b) a##b
#define LOOM_STATUS_CONCAT(a, b) LOOM_STATUS_CONCAT_INNER(a, b)

// The two helper macros (STYLE.md habit 4).
#define LOOM_RETURN_IF_ERROR(expr)                 \
  do {                                             \
    ::loom::Status loom_status_ = (expr);          \
    if (!loom_status_.isOk()) return loom_status_; \
  } while (0)

#define LOOM_ASSIGN_OR_RETURN(lhs, expr) \
  LOOM_ASSIGN_OR_RETURN_IMPL(LOOM_STATUS_CONCAT(loom_result_, __LINE__), lhs, expr)
#define LOOM_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.isOk()) return tmp.takeStatus();        \
  lhs = std::move(tmp).value()
