#include "algorithms/planner.h"

#include <cctype>
#include <string>

#include "algorithms/builder.h"

namespace loom::algo {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& ch : out) {
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) {
    s.remove_prefix(1);
  }
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) {
    s.remove_suffix(1);
  }
  return s;
}

std::vector<std::string_view> split(std::string_view s, char separator) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    const size_t end = s.find(separator, start);
    parts.push_back(trim(s.substr(start, end == std::string_view::npos ? end : end - start)));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

Status bad(std::string_view entry, const std::string& what) {
  return invalidArgument("LOOM_ALGO: " + what + " in '" + std::string(entry) + "'");
}

Result<Collective> parseCollective(std::string_view token, std::string_view entry) {
  const std::string name = lower(token);
  std::string known;
  for (int c = 0; c < kNumCollectives; ++c) {
    const char* candidate = collectiveName(static_cast<Collective>(c));
    if (name == candidate) return static_cast<Collective>(c);
    known += (c ? ", " : "") + std::string(candidate);
  }
  return bad(entry, "unknown collective '" + std::string(token) + "' (known: " + known + ")");
}

Result<const Algorithm*> parseAlgorithm(Collective c, std::string_view token,
                                        std::string_view entry) {
  if (const Algorithm* found = findAlgorithm(c, lower(token))) return found;
  std::string known;
  for (const Algorithm* algorithm : algorithmsFor(c)) {
    known += (known.empty() ? "" : ", ") + std::string(algorithm->name());
  }
  return bad(entry, "unknown algorithm '" + std::string(token) + "' for " + collectiveName(c) +
                        " (known: " + known + ")");
}

// "4096", "64K", "1m", "2G" or (upper bounds only) "inf".
Result<uint64_t> parseSize(std::string_view token, bool upper, std::string_view entry) {
  const std::string text = lower(token);
  if (text == "inf") {
    if (upper) return kNoUpperBound;
    return bad(entry, "'inf' can only end a range");
  }
  uint64_t value = 0;
  size_t i = 0;
  for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
    const uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (value > (kNoUpperBound - digit) / 10) return bad(entry, "size '" + text + "' overflows");
    value = value * 10 + digit;
  }
  const std::string suffix = text.substr(i);
  uint64_t scale = 1;
  if (suffix == "k") scale = uint64_t{1} << 10;
  if (suffix == "m") scale = uint64_t{1} << 20;
  if (suffix == "g") scale = uint64_t{1} << 30;
  if (i == 0 || (scale == 1 && !suffix.empty())) {
    return bad(entry, "bad size '" + std::string(token) +
                          "' (expected bytes with an optional K, M or G suffix)");
  }
  if (value > kNoUpperBound / scale) return bad(entry, "size '" + text + "' overflows");
  return value * scale;
}

Result<AlgoChoice> parseRangeChoice(Collective c, std::string_view choice, std::string_view entry) {
  const size_t at = choice.find('@');
  const std::string_view range = trim(choice.substr(0, at));
  const size_t dash = range.find('-');
  if (dash == std::string_view::npos || range.find('-', dash + 1) != std::string_view::npos) {
    return bad(entry, "bad range '" + std::string(range) + "' (expected lo-hi, e.g. 0-64K)");
  }
  AlgoChoice result;
  LOOM_ASSIGN_OR_RETURN(result.minBytes, parseSize(trim(range.substr(0, dash)), false, entry));
  LOOM_ASSIGN_OR_RETURN(result.maxBytes, parseSize(trim(range.substr(dash + 1)), true, entry));
  if (result.minBytes >= result.maxBytes) {
    return bad(entry, "range '" + std::string(range) + "' is empty");
  }
  LOOM_ASSIGN_OR_RETURN(result.algorithm, parseAlgorithm(c, trim(choice.substr(at + 1)), entry));
  return result;
}

Status parseEntry(std::string_view entry, AlgoOverrides* out) {
  const size_t colon = entry.find(':');
  if (colon == std::string_view::npos) {
    return bad(entry, "missing ':' (expected <collective>:<algorithm>)");
  }
  LOOM_ASSIGN_OR_RETURN(const Collective c, parseCollective(trim(entry.substr(0, colon)), entry));
  std::vector<AlgoChoice>& choices = out->byCollective[static_cast<int>(c)];
  if (!choices.empty()) return bad(entry, std::string(collectiveName(c)) + " is given twice");
  const std::vector<std::string_view> parts = split(entry.substr(colon + 1), ',');
  for (std::string_view part : parts) {
    if (part.empty()) return bad(entry, "empty choice");
    if (part.find('@') == std::string_view::npos) {
      if (parts.size() > 1) {
        return bad(entry, "'" + std::string(part) +
                              "' has no size range; in a list every choice is lo-hi@algorithm");
      }
      AlgoChoice all;
      LOOM_ASSIGN_OR_RETURN(all.algorithm, parseAlgorithm(c, part, entry));
      choices.push_back(all);
      continue;
    }
    LOOM_ASSIGN_OR_RETURN(const AlgoChoice ranged, parseRangeChoice(c, part, entry));
    choices.push_back(ranged);
  }
  return Status::ok();
}

uint64_t saturatingMultiply(uint64_t a, uint64_t b) {
  if (a != 0 && b > kNoUpperBound / a) return kNoUpperBound;
  return a * b;
}

}  // namespace

bool AlgoOverrides::empty() const {
  for (const auto& choices : byCollective) {
    if (!choices.empty()) return false;
  }
  return true;
}

const Algorithm* AlgoOverrides::find(Collective c, uint64_t bytes) const {
  const int index = static_cast<int>(c);
  if (index < 0 || index >= kNumCollectives) return nullptr;
  for (const AlgoChoice& choice : byCollective[index]) {
    if (choice.holds(bytes)) return choice.algorithm;
  }
  return nullptr;
}

Result<AlgoOverrides> parseAlgoOverrides(std::string_view spec) {
  AlgoOverrides overrides;
  for (std::string_view entry : split(spec, ';')) {
    if (entry.empty()) continue;  // tolerate "a:b;" and blanks
    LOOM_RETURN_IF_ERROR(parseEntry(entry, &overrides));
  }
  return overrides;
}

uint64_t collectiveBytes(const CollectiveArgs& args, size_t elementBytes) {
  uint64_t elements = args.count;
  switch (args.collective) {
    case Collective::kAllGather:
    case Collective::kReduceScatter:
    case Collective::kAllToAll:
    case Collective::kGather:
    case Collective::kScatter:
      elements =
          saturatingMultiply(elements, static_cast<uint64_t>(args.nranks < 1 ? 1 : args.nranks));
      break;
    default:
      break;
  }
  return saturatingMultiply(elements, elementBytes);
}

const Algorithm* defaultAlgorithm(const CollectiveArgs& args, uint64_t bytes,
                                  const CostModel& model, const Topology& topology,
                                  double* predictedUs) {
  // A measured.np<N> line of the tuning profile that holds this call decides.
  if (const Algorithm* measured = measuredAlgorithm(model, args, bytes, topology);
      measured != nullptr && measured->supports(args)) {
    if (predictedUs != nullptr) *predictedUs = predictUs(*measured, args, bytes, model, topology);
    return measured;
  }
  const Algorithm* best = nullptr;
  const Algorithm* firstSupported = nullptr;
  double bestUs = 0;
  for (const Algorithm* candidate : algorithmsFor(args.collective)) {
    if (!candidate->supports(args)) continue;
    if (firstSupported == nullptr) firstSupported = candidate;
    const double us = predictUs(*candidate, args, bytes, model, topology);
    if (us >= 0 && (best == nullptr || us < bestUs)) {
      best = candidate;
      bestUs = us;
    }
  }
  if (best == nullptr) {  // no formula applies: the first registered algorithm that can run it
    best = firstSupported;
    bestUs = -1;
  }
  if (best == nullptr) {  // nothing supports the call: the first one names the problem
    const std::vector<const Algorithm*>& all = algorithmsFor(args.collective);
    best = all.empty() ? nullptr : all.front();
    bestUs = -1;
  }
  if (predictedUs != nullptr) *predictedUs = bestUs;
  return best;
}

Result<const Algorithm*> chooseAlgorithm(const CollectiveArgs& args, size_t elementBytes,
                                         const AlgoOverrides& overrides, const CostModel& model,
                                         const Topology& topology, Choice* choice) {
  const uint64_t bytes = collectiveBytes(args, elementBytes);
  const Algorithm* chosen = overrides.find(args.collective, bytes);
  const char* source = "LOOM_ALGO chose";
  double predicted = -1;
  bool measured = false;
  if (chosen != nullptr) {
    predicted = predictUs(*chosen, args, bytes, model, topology);
  } else {
    chosen = defaultAlgorithm(args, bytes, model, topology, &predicted);
    source = "the default is";
    measured = chosen != nullptr && chosen == measuredAlgorithm(model, args, bytes, topology);
  }
  if (chosen == nullptr) {
    return invalidArgument(std::string("no algorithm for ") + collectiveName(args.collective));
  }
  if (!chosen->supports(args)) {
    const std::string problem = argsProblem(args);
    return invalidArgument(std::string(source) + " " + collectiveName(args.collective) + ":" +
                           std::string(chosen->name()) + ", which does not support this call" +
                           (problem.empty() ? "" : " (" + problem + ")"));
  }
  if (choice != nullptr) {
    choice->algorithm = chosen;
    choice->bytes = bytes;
    choice->predictedUs = predicted;
    choice->overridden = source[0] == 'L';
    choice->measured = measured;
  }
  return chosen;
}

}  // namespace loom::algo
