#include "topology/cpuset.h"

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace loom::topo {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

Result<int> cpuNumber(std::string_view s, std::string_view whole) {
  int v = -1;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < 0 || v >= kMaxCpus)
    return invalidArgument("bad CPU number '" + std::string(s) + "' in CPU list '" +
                           std::string(whole) + "'");
  return v;
}

}  // namespace

Result<std::vector<int>> parseCpuList(std::string_view text) {
  const std::string_view s = trim(text);
  std::vector<int> cpus;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t comma = s.find(',', pos);
    if (comma == std::string_view::npos) comma = s.size();
    const std::string_view item = s.substr(pos, comma - pos);
    const size_t dash = item.find('-');
    LOOM_ASSIGN_OR_RETURN(int lo, cpuNumber(item.substr(0, dash), s));
    int hi = lo;
    if (dash != std::string_view::npos) {
      LOOM_ASSIGN_OR_RETURN(hi, cpuNumber(item.substr(dash + 1), s));
    }
    if (hi < lo) return invalidArgument("descending range in CPU list '" + std::string(s) + "'");
    if (cpus.size() + static_cast<size_t>(hi - lo + 1) > static_cast<size_t>(kMaxCpus))
      return invalidArgument("CPU list '" + std::string(s) + "' names too many CPUs");
    for (int c = lo; c <= hi; ++c)
      cpus.push_back(c);
    pos = comma + 1;
  }
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  return cpus;
}

Result<std::vector<int>> parseCpuMask(std::string_view text) {
  const std::string_view s = trim(text);
  if (s.empty()) return invalidArgument("empty CPU mask");
  std::vector<std::string_view> groups;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    if (comma == std::string_view::npos) comma = s.size();
    groups.push_back(s.substr(pos, comma - pos));
    if (groups.size() > static_cast<size_t>(kMaxCpus / 32))
      return invalidArgument("CPU mask has too many groups");
    pos = comma + 1;
  }
  std::vector<int> cpus;
  for (size_t g = 0; g < groups.size(); ++g) {
    std::string_view hex = groups[groups.size() - 1 - g];  // least significant group first
    if (hex.starts_with("0x") || hex.starts_with("0X")) hex.remove_prefix(2);
    uint32_t bits = 0;
    auto [p, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), bits, 16);
    if (hex.empty() || hex.size() > 8 || ec != std::errc() || p != hex.data() + hex.size())
      return invalidArgument("bad group '" + std::string(hex) + "' in CPU mask '" + std::string(s) +
                             "'");
    for (int b = 0; b < 32; ++b)
      if (bits & (1u << b)) cpus.push_back(static_cast<int>(g) * 32 + b);
  }
  std::sort(cpus.begin(), cpus.end());
  return cpus;
}

std::string formatCpuList(const std::vector<int>& cpus) {
  std::string out;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1)
      ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(cpus[i]);
    if (j > i) out += "-" + std::to_string(cpus[j]);
    i = j + 1;
  }
  return out;
}

std::string formatCpuMask(const std::vector<int>& cpus) {
  int maxCpu = 0;
  for (int c : cpus)
    maxCpu = std::max(maxCpu, c);
  const int groups = maxCpu / 32 + 1;
  std::vector<uint32_t> bits(static_cast<size_t>(groups), 0);
  for (int c : cpus)
    if (c >= 0) bits[static_cast<size_t>(c / 32)] |= 1u << (c % 32);
  std::string out;
  for (int g = groups - 1; g >= 0; --g) {
    char buf[12];
    std::snprintf(buf, sizeof(buf), "%08x", bits[static_cast<size_t>(g)]);
    if (!out.empty()) out += ',';
    out += buf;
  }
  return out;
}

}  // namespace loom::topo
