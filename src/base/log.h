// Leveled logging: LOOM_DEBUG=NONE|VERSION|WARN|INFO|TRACE, LOOM_DEBUG_SUBSYS, LOOM_DEBUG_FILE.
//
// Every line carries host, pid, thread and the rank of the communicator the thread is working
// for (LogRankScope sets it), so interleaved output from many ranks can be sorted out:
//   node1:12345:12350 [rank 3] LOOM WARN NET connection to rank 2 (10.0.0.2:4711) closed
// The logger is process-wide and configured once from the environment on first use.
// An error is logged once, where it is first classified (STYLE.md habit 5).
//
// Thread-safety: every function may be called from any thread; lines are written whole.
#pragma once

#include <sstream>
#include <string>

namespace loom {

enum class LogLevel : int { kNone = 0, kVersion = 1, kWarn = 2, kInfo = 3, kTrace = 4 };

enum class Subsys : unsigned {
  kInit = 1u << 0,
  kBootstrap = 1u << 1,
  kNet = 1u << 2,
  kShm = 1u << 3,
  kColl = 1u << 4,
  kTuning = 1u << 5,
  kTopo = 1u << 6,
  kApi = 1u << 7,
  kAll = ~0u,
};

namespace log {

bool enabled(LogLevel level, Subsys subsys);
void write(LogLevel level, Subsys subsys, const std::string& message);

// For tests and tools: reconfigure from explicit values (same syntax as the variables).
void configure(const std::string& level, const std::string& subsys, const std::string& file);
// Parses "INIT,NET" or "^COLL"; returns false and leaves mask untouched on an unknown name.
bool parseSubsysMask(const std::string& text, unsigned* mask);

// Sets the rank shown in this thread's log lines for the scope's lifetime (-1 = none).
class RankScope {
 public:
  explicit RankScope(int rank);
  ~RankScope();
  RankScope(const RankScope&) = delete;
  RankScope& operator=(const RankScope&) = delete;

 private:
  int saved_;
};

class Line {
 public:
  Line(LogLevel level, Subsys subsys) : level_(level), subsys_(subsys) {}
  ~Line() { write(level_, subsys_, os_.str()); }
  template <typename T>
  Line& operator<<(const T& v) {
    os_ << v;
    return *this;
  }

 private:
  LogLevel level_;
  Subsys subsys_;
  std::ostringstream os_;
};

// Turns `Line(...) << a << b` into a void expression for the ?: in LOOM_LOG.
struct Voidify {
  void operator&(const Line&) {}
};

}  // namespace log
}  // namespace loom

// LOOM_LOG(kWarn, kNet) << "text " << value;  Arguments are not evaluated when disabled. An
// expression (not an if), so it is safe inside an unbraced if/else.
#define LOOM_LOG(level, subsys)                                          \
  !::loom::log::enabled(::loom::LogLevel::level, ::loom::Subsys::subsys) \
      ? (void)0                                                          \
      : ::loom::log::Voidify() &                                         \
            ::loom::log::Line(::loom::LogLevel::level, ::loom::Subsys::subsys)
