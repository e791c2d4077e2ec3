#include "base/log.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "base/config.h"

namespace loom::log {

namespace {

struct Subsystem {
  const char* name;
  Subsys bit;
};
constexpr Subsystem kSubsystems[] = {
    {"INIT", Subsys::kInit}, {"BOOTSTRAP", Subsys::kBootstrap},
    {"NET", Subsys::kNet},   {"SHM", Subsys::kShm},
    {"COLL", Subsys::kColl}, {"TUNING", Subsys::kTuning},
    {"TOPO", Subsys::kTopo}, {"API", Subsys::kApi},
    {"ALL", Subsys::kAll},
};

const char* subsysName(Subsys s) {
  for (const Subsystem& x : kSubsystems)
    if (x.bit == s) return x.name;
  return "?";
}

const char* levelName(LogLevel l) {
  switch (l) {
    case LogLevel::kNone:
      return "NONE";
    case LogLevel::kVersion:
      return "VERSION";
    case LogLevel::kWarn:
      return "WARN";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kTrace:
      return "TRACE";
  }
  return "?";
}

struct State {
  std::atomic<int> level{static_cast<int>(LogLevel::kWarn)};
  std::atomic<unsigned> mask{~0u};
  std::mutex mu;  // guards file and the write
  FILE* file = stderr;
  char host[64] = "?";
};

thread_local int tRank = -1;

std::string expandPath(const std::string& pattern, const char* host) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '%' && i + 1 < pattern.size()) {
      char c = pattern[i + 1];
      if (c == 'h') {
        out += host;
        ++i;
        continue;
      }
      if (c == 'p') {
        out += std::to_string(getpid());
        ++i;
        continue;
      }
    }
    out += pattern[i];
  }
  return out;
}

bool parseLevel(std::string text, LogLevel* level) {
  for (char& c : text)
    c = static_cast<char>(toupper(c));
  if (text == "NONE")
    *level = LogLevel::kNone;
  else if (text == "VERSION")
    *level = LogLevel::kVersion;
  else if (text == "WARN" || text == "")
    *level = LogLevel::kWarn;
  else if (text == "INFO")
    *level = LogLevel::kInfo;
  else if (text == "TRACE")
    *level = LogLevel::kTrace;
  else
    return false;
  return true;
}

void applyConfig(State* s, const std::string& level, const std::string& subsys,
                 const std::string& file) {
  LogLevel l = LogLevel::kWarn;
  if (!parseLevel(level, &l))
    std::fprintf(stderr, "loom: LOOM_DEBUG='%s' is not NONE|VERSION|WARN|INFO|TRACE; using WARN\n",
                 level.c_str());
  unsigned mask = ~0u;
  if (!parseSubsysMask(subsys, &mask))
    std::fprintf(stderr, "loom: LOOM_DEBUG_SUBSYS='%s' names an unknown subsystem; using ALL\n",
                 subsys.c_str());
  std::lock_guard<std::mutex> lock(s->mu);
  if (s->file != stderr) std::fclose(s->file);
  s->file = stderr;
  if (!file.empty()) {
    std::string path = expandPath(file, s->host);
    FILE* f = std::fopen(path.c_str(), "a");
    if (f)
      s->file = f;
    else
      std::fprintf(stderr, "loom: cannot open LOOM_DEBUG_FILE '%s'; logging to stderr\n",
                   path.c_str());
  }
  s->level.store(static_cast<int>(l), std::memory_order_relaxed);
  s->mask.store(mask, std::memory_order_relaxed);
}

State& state() {
  static State* s = [] {
    State* st = new State();
    gethostname(st->host, sizeof(st->host) - 1);
    if (char* dot = std::strchr(st->host, '.')) *dot = '\0';
    // Read only the three logging variables here: logging must work before (and while) the
    // full Config is parsed, and parsing may itself log.
    const Environment& env = Environment::process();
    applyConfig(st, env.get("LOOM_DEBUG").value_or("WARN"),
                env.get("LOOM_DEBUG_SUBSYS").value_or("ALL"),
                env.get("LOOM_DEBUG_FILE").value_or(""));
    return st;
  }();
  return *s;
}

}  // namespace

bool parseSubsysMask(const std::string& text, unsigned* mask) {
  std::string t = text;
  bool exclude = !t.empty() && t[0] == '^';
  if (exclude) t.erase(0, 1);
  unsigned bits = 0;
  size_t start = 0;
  while (start <= t.size()) {
    size_t end = t.find(',', start);
    if (end == std::string::npos) end = t.size();
    std::string name = t.substr(start, end - start);
    for (char& c : name)
      c = static_cast<char>(toupper(c));
    if (!name.empty()) {
      bool found = false;
      for (const Subsystem& x : kSubsystems) {
        if (name == x.name) {
          bits |= static_cast<unsigned>(x.bit);
          found = true;
        }
      }
      if (!found) return false;
    }
    start = end + 1;
  }
  if (t.empty()) bits = ~0u;
  *mask = exclude ? ~bits : bits;
  return true;
}

bool enabled(LogLevel level, Subsys subsys) {
  State& s = state();
  return static_cast<int>(level) <= s.level.load(std::memory_order_relaxed) &&
         (s.mask.load(std::memory_order_relaxed) & static_cast<unsigned>(subsys)) != 0;
}

void write(LogLevel level, Subsys subsys, const std::string& message) {
  State& s = state();
  char prefix[160];
  long tid = syscall(SYS_gettid);
  if (tRank >= 0)
    std::snprintf(prefix, sizeof(prefix), "%s:%d:%ld [rank %d] LOOM %s %s ", s.host, getpid(), tid,
                  tRank, levelName(level), subsysName(subsys));
  else
    std::snprintf(prefix, sizeof(prefix), "%s:%d:%ld LOOM %s %s ", s.host, getpid(), tid,
                  levelName(level), subsysName(subsys));
  std::string line = std::string(prefix) + message + "\n";
  std::lock_guard<std::mutex> lock(s.mu);
  std::fwrite(line.data(), 1, line.size(), s.file);
  std::fflush(s.file);
}

void configure(const std::string& level, const std::string& subsys, const std::string& file) {
  applyConfig(&state(), level, subsys, file);
}

RankScope::RankScope(int rank) : saved_(tRank) {
  tRank = rank;
}
RankScope::~RankScope() {
  tRank = saved_;
}

}  // namespace loom::log
