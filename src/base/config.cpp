#include "base/config.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "base/log.h"

extern char** environ;

namespace loom {

namespace {

class ProcessEnvironment final : public Environment {
 public:
  ProcessEnvironment() {
    for (char** e = environ; e && *e; ++e) {
      const char* eq = std::strchr(*e, '=');
      if (eq) vars_.emplace(std::string(*e, eq - *e), std::string(eq + 1));
    }
  }
  std::optional<std::string> get(std::string_view name) const override {
    auto it = vars_.find(std::string(name));
    if (it == vars_.end()) return std::nullopt;
    return it->second;
  }
  std::map<std::string, std::string> all() const override { return vars_; }

 private:
  std::map<std::string, std::string> vars_;
};

constexpr ConfigVar kTable[] = {
#define LOOM_CONFIG_ROW(field, name, type, def, help) {name, ConfigType::k##type, def, help},
    LOOM_CONFIG_VARS(LOOM_CONFIG_ROW)
#undef LOOM_CONFIG_ROW
};

size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t next = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1] ? 1 : 0)});
      diag = row[j];
      row[j] = next;
    }
  }
  return row[b.size()];
}

// Names loom reads that are not in the table (set by loom tools for their own use).
bool isKnownName(std::string_view name) {
  for (const ConfigVar& v : kTable)
    if (name == v.name) return true;
  return false;
}

void warnUnknownNames(const Environment& env) {
  static std::once_flag once;
  std::call_once(once, [&] {
    for (const auto& [name, value] : env.all()) {
      if (name.rfind("LOOM_", 0) != 0 || isKnownName(name)) continue;
      const ConfigVar* best = &kTable[0];
      for (const ConfigVar& v : kTable)
        if (editDistance(name, v.name) < editDistance(name, best->name)) best = &v;
      LOOM_LOG(kWarn, kInit) << name << " is not a loom variable (ignored); did you mean "
                             << best->name << "? loom-info lists them all";
    }
  });
}

}  // namespace

const Environment& Environment::process() {
  static const ProcessEnvironment* env = new ProcessEnvironment();
  return *env;
}

std::optional<std::string> MapEnvironment::get(std::string_view name) const {
  auto it = vars_.find(std::string(name));
  if (it == vars_.end()) return std::nullopt;
  return it->second;
}

Result<int64_t> parseInt(std::string_view name, std::string_view text) {
  std::string s(text);
  if (s.empty()) return invalidArgument(std::string(name) + " is empty; expected an integer");
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 0);
  if (errno != 0 || end == s.c_str() || *end != '\0')
    return invalidArgument(std::string(name) + "='" + s + "' is not an integer");
  return static_cast<int64_t>(v);
}

Result<bool> parseBool(std::string_view name, std::string_view text) {
  std::string s(text);
  std::transform(s.begin(), s.end(), s.begin(), ::tolower);
  if (s == "1" || s == "true" || s == "yes" || s == "on") return true;
  if (s == "0" || s == "false" || s == "no" || s == "off" || s.empty()) return false;
  return invalidArgument(std::string(name) + "='" + std::string(text) +
                         "' is not a boolean; use 0 or 1");
}

std::span<const ConfigVar> configTable() {
  return kTable;
}

Status Config::set(std::string_view name, std::string_view value) {
#define LOOM_CONFIG_SET_String(field) field = std::string(value);
#define LOOM_CONFIG_SET_Int(field) LOOM_ASSIGN_OR_RETURN(field, parseInt(name, value));
#define LOOM_CONFIG_SET_Bool(field) LOOM_ASSIGN_OR_RETURN(field, parseBool(name, value));
#define LOOM_CONFIG_SET(field, vname, type, def, help) \
  if (name == vname) {                                 \
    LOOM_CONFIG_SET_##type(field) return Status::ok(); \
  }
  LOOM_CONFIG_VARS(LOOM_CONFIG_SET)
#undef LOOM_CONFIG_SET
  return invalidArgument(std::string(name) + " is not a loom configuration variable");
}

std::optional<std::string> Config::valueOf(std::string_view name) const {
#define LOOM_CONFIG_GET_String(field) return field;
#define LOOM_CONFIG_GET_Int(field) return std::to_string(field);
#define LOOM_CONFIG_GET_Bool(field) return std::string(field ? "1" : "0");
#define LOOM_CONFIG_GET(field, vname, type, def, help) \
  if (name == vname) {                                 \
    LOOM_CONFIG_GET_##type(field)                      \
  }
  LOOM_CONFIG_VARS(LOOM_CONFIG_GET)
#undef LOOM_CONFIG_GET
  return std::nullopt;
}

namespace {

// The ibverbs variables go straight into queue-pair attributes of fixed widths.
Status checkIbRanges(const Config& config) {
  struct Range {
    const char* name;
    int64_t value, lo, hi;
  };
  const Range ranges[] = {{"LOOM_IB_GID_INDEX", config.ibGidIndex, -1, 255},
                          {"LOOM_IB_TC", config.ibTc, 0, 255},
                          {"LOOM_IB_SL", config.ibSl, 0, 15},
                          {"LOOM_IB_TIMEOUT", config.ibTimeout, 1, 31},
                          {"LOOM_IB_RETRY_CNT", config.ibRetryCnt, 0, 7},
                          {"LOOM_IB_QPS_PER_CONNECTION", config.ibQpsPerConnection, 1, 16}};
  for (const Range& r : ranges)
    if (r.value < r.lo || r.value > r.hi)
      return invalidArgument(std::string(r.name) + " must be in [" + std::to_string(r.lo) + ", " +
                             std::to_string(r.hi) + "], got " + std::to_string(r.value));
  return Status::ok();
}

}  // namespace

Result<Config> Config::fromEnvironment(const Environment& env) {
  Config config;
  for (const ConfigVar& v : kTable) {
    std::optional<std::string> value = env.get(v.name);
    if (value) LOOM_RETURN_IF_ERROR(config.set(v.name, *value));
  }
  if (config.timeoutMs <= 0)
    return invalidArgument("LOOM_TIMEOUT_MS must be positive, got " +
                           std::to_string(config.timeoutMs));
  if (config.sliceBytes < 4096 || config.sliceBytes > (64 << 20))
    return invalidArgument("LOOM_SLICE_BYTES must be in [4096, 64 MiB], got " +
                           std::to_string(config.sliceBytes));
  if (config.pipelineDepth < 1 || config.pipelineDepth > 64)
    return invalidArgument("LOOM_PIPELINE_DEPTH must be in [1, 64], got " +
                           std::to_string(config.pipelineDepth));
  LOOM_RETURN_IF_ERROR(checkIbRanges(config));
  if (config.nchannels < 0 || config.nchannels > 32)
    return invalidArgument("LOOM_NCHANNELS must be in [0, 32], got " +
                           std::to_string(config.nchannels));
  if (config.spinUs < 0) return invalidArgument("LOOM_SPIN_US must be >= 0");
  warnUnknownNames(env);
  return config;
}

const Config& Config::processDefaults() {
  static const Config* config = [] {
    Result<Config> parsed = fromEnvironment(Environment::process());
    if (parsed.isOk()) return new Config(std::move(parsed).value());
    std::fprintf(stderr, "loom: %s (using defaults)\n", parsed.status().toString().c_str());
    return new Config();
  }();
  return *config;
}

}  // namespace loom
