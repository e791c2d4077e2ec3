// Monotonic time and deadlines. Every blocking wait in loom takes a Deadline (STYLE.md:
// a limit on everything), so "how long may this block" is always an explicit argument.
#pragma once

#include <time.h>

#include <cstdint>
#include <limits>

namespace loom {

inline int64_t nowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}
// A clock of a few milliseconds' resolution that costs a few nanoseconds to read: for times
// only reported ("last completion 120 ms ago"), never for deadlines.
inline int64_t nowCoarseNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}
inline int64_t nowUs() {
  return nowNs() / 1000;
}

class Deadline {
 public:
  static Deadline afterMs(int64_t ms) { return Deadline(nowNs() + ms * 1000000); }
  static Deadline never() { return Deadline(std::numeric_limits<int64_t>::max()); }
  static Deadline atNs(int64_t ns) { return Deadline(ns); }

  bool expired() const { return nowNs() >= at_ns_; }
  // Milliseconds left, rounded up, clamped to [0, INT32_MAX] (poll()'s argument).
  int remainingMs() const {
    if (at_ns_ == std::numeric_limits<int64_t>::max()) return std::numeric_limits<int>::max();
    int64_t left = at_ns_ - nowNs();
    if (left <= 0) return 0;
    int64_t ms = (left + 999999) / 1000000;
    return ms > std::numeric_limits<int>::max() ? std::numeric_limits<int>::max()
                                                : static_cast<int>(ms);
  }
  int64_t atNs() const { return at_ns_; }
  Deadline earlier(const Deadline& o) const { return at_ns_ < o.at_ns_ ? *this : o; }

 private:
  explicit Deadline(int64_t at_ns) : at_ns_(at_ns) {}
  int64_t at_ns_;
};

}  // namespace loom
