#include "transports/testing/fault_plan.h"

#include <charconv>

namespace loom::transport::fault {

namespace {

constexpr const char* kNames[] = {"delay", "drop", "short", "corrupt", "close", "crash", "kill"};

Result<int64_t> number(std::string_view rule, std::string_view key, std::string_view text) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < 0)
    return invalidArgument("fault rule '" + std::string(rule) + "': " + std::string(key) +
                           " must be a non-negative integer, got '" + std::string(text) + "'");
  return v;
}

Status setField(FaultRule* r, std::string_view rule, std::string_view key, std::string_view val) {
  LOOM_ASSIGN_OR_RETURN(int64_t v, number(rule, key, val));
  if (key == "rank") {
    r->rank = static_cast<int>(v);
  } else if (key == "peer") {
    r->peer = static_cast<int>(v);
  } else if (key == "lane") {
    r->lane = static_cast<int>(v);
  } else if (key == "msg") {
    r->message = v;
  } else if (key == "ms") {
    r->delayMs = v;
  } else if (key == "bytes") {
    r->shortBytes = v;
  } else {
    return invalidArgument("fault rule '" + std::string(rule) + "': unknown field '" +
                           std::string(key) + "' (rank, peer, lane, msg, ms, bytes)");
  }
  return Status::ok();
}

Result<FaultRule> parseRule(std::string_view text) {
  FaultRule r;
  const size_t colon = text.find(':');
  const std::string_view kind = text.substr(0, colon);
  bool known = false;
  for (int k = 0; k < 7; ++k)
    if (kind == kNames[k]) {
      r.kind = static_cast<FaultKind>(k);
      known = true;
    }
  if (!known)
    return invalidArgument("fault rule '" + std::string(text) + "': unknown kind '" +
                           std::string(kind) +
                           "' (delay, drop, short, corrupt, close, crash, kill)");
  std::string_view rest = colon == std::string_view::npos ? "" : text.substr(colon + 1);
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view field = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? "" : rest.substr(comma + 1);
    const size_t eq = field.find('=');
    if (eq == std::string_view::npos)
      return invalidArgument("fault rule '" + std::string(text) + "': expected key=value, got '" +
                             std::string(field) + "'");
    LOOM_RETURN_IF_ERROR(setField(&r, text, field.substr(0, eq), field.substr(eq + 1)));
  }
  return r;
}

}  // namespace

const char* faultKindName(FaultKind kind) {
  return kNames[static_cast<int>(kind)];
}

bool FaultRule::matches(int rankIn, int peerIn, int laneIn, int64_t messageIn) const {
  return (rank < 0 || rank == rankIn) && (peer < 0 || peer == peerIn) &&
         (lane < 0 || lane == laneIn) && (message < 0 || message == messageIn);
}

std::string FaultRule::toString() const {
  std::string s = faultKindName(kind);
  char sep = ':';
  auto add = [&](const char* key, int64_t v, bool present) {
    if (!present) return;
    s += sep;
    s += key;
    s += "=" + std::to_string(v);
    sep = ',';
  };
  add("rank", rank, rank >= 0);
  add("peer", peer, peer >= 0);
  add("lane", lane, lane >= 0);
  add("msg", message, message >= 0);
  add("ms", delayMs, kind == FaultKind::kDelay);
  add("bytes", shortBytes, kind == FaultKind::kShortWrite && shortBytes > 0);
  return s;
}

const FaultRule* FaultPlan::find(int rank, int peer, int lane, int64_t message) const {
  for (const FaultRule& r : rules)
    if (r.matches(rank, peer, lane, message)) return &r;
  return nullptr;
}

Result<FaultPlan> FaultPlan::parse(std::string_view text) {
  FaultPlan plan;
  while (!text.empty()) {
    const size_t semi = text.find(';');
    const std::string_view rule = text.substr(0, semi);
    text = semi == std::string_view::npos ? "" : text.substr(semi + 1);
    if (rule.empty()) continue;
    LOOM_ASSIGN_OR_RETURN(FaultRule r, parseRule(rule));
    plan.rules.push_back(r);
  }
  return plan;
}

std::string FaultPlan::toString() const {
  std::string s;
  for (const FaultRule& r : rules)
    s += (s.empty() ? "" : ";") + r.toString();
  return s;
}

}  // namespace loom::transport::fault
