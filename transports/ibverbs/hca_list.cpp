#include "transports/ibverbs/hca_list.h"

#include <charconv>

namespace loom::transport::ibverbs {

namespace {

Status badItem(std::string_view text, std::string_view item, std::string_view why) {
  return invalidArgument("LOOM_IB_HCA='" + std::string(text) + "': item '" + std::string(item) +
                         "' " + std::string(why) +
                         " (expected e.g. 'mlx5_0:1,mlx5_1', '^mlx5_2' or '=mlx5_0')");
}

constexpr int kMaxPort = 255;  // ports are u8 in verbs

Result<HcaEntry> parseItem(std::string_view text, std::string_view item) {
  if (item.empty()) return badItem(text, item, "is empty");
  if (item.find_first_of("^=") != std::string_view::npos)
    return badItem(text, item, "has '^' or '=' inside; they may only prefix the whole list");
  HcaEntry e;
  const size_t colon = item.find(':');
  e.device = std::string(item.substr(0, colon));
  if (e.device.empty()) return badItem(text, item, "has no device name");
  if (colon == std::string_view::npos) return e;
  std::string_view port = item.substr(colon + 1);
  int value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value < 1 ||
      value > kMaxPort)
    return badItem(text, item, "has a port that is not an integer in [1, 255]");
  e.port = value;
  return e;
}

}  // namespace

Result<HcaFilter> parseHcaList(std::string_view text) {
  HcaFilter f;
  std::string_view rest = text;
  if (!rest.empty() && rest.front() == '^') {
    f.exclude_ = true;
    rest.remove_prefix(1);
  }
  if (!rest.empty() && rest.front() == '=') {
    f.exact_ = true;
    rest.remove_prefix(1);
  }
  if (rest.empty()) {
    if (f.exclude_ || f.exact_) return badItem(text, text, "names no device");
    return f;
  }
  for (;;) {
    const size_t comma = rest.find(',');
    LOOM_ASSIGN_OR_RETURN(HcaEntry e, parseItem(text, rest.substr(0, comma)));
    f.entries_.push_back(std::move(e));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return f;
}

bool HcaFilter::listed(std::string_view device, int port) const {
  for (const HcaEntry& e : entries_) {
    const bool nameOk = exact_ ? device == e.device : device.starts_with(e.device);
    if (nameOk && (e.port < 0 || e.port == port)) return true;
  }
  return false;
}

bool HcaFilter::allows(std::string_view device, int port) const {
  if (entries_.empty()) return true;
  return listed(device, port) != exclude_;
}

std::vector<HcaPort> selectPorts(const HcaFilter& filter, const std::vector<HcaPort>& candidates) {
  std::vector<HcaPort> out;
  for (const HcaPort& c : candidates)
    if (filter.allows(c.device, c.port)) out.push_back(c);
  return out;
}

namespace {

bool ipv4Mapped(const std::array<uint8_t, 16>& g) {
  for (int i = 0; i < 10; ++i)
    if (g[i] != 0) return false;
  return g[10] == 0xff && g[11] == 0xff;
}

bool linkLocal(const std::array<uint8_t, 16>& g) {
  return g[0] == 0xfe && (g[1] & 0xc0) == 0x80;
}

}  // namespace

Result<int> selectGidIndex(const std::vector<GidEntry>& table, int64_t configured) {
  if (table.empty()) return invalidArgument("the port has an empty GID table");
  if (configured >= 0) {
    for (const GidEntry& e : table)
      if (e.index == configured) return e.index;
    return invalidArgument("LOOM_IB_GID_INDEX=" + std::to_string(configured) +
                           " is not in the port's GID table (" + std::to_string(table.size()) +
                           " entries); use -1 to choose automatically");
  }
  auto first = [&](auto pred) -> int {
    for (const GidEntry& e : table)
      if (e.type == GidType::kRoceV2 && pred(e.gid)) return e.index;
    return -1;
  };
  for (int idx : {first(ipv4Mapped), first([](const auto& g) { return !linkLocal(g); }),
                  first([](const auto&) { return true; })})
    if (idx >= 0) return idx;
  return 0;
}

double portBytesPerSec(uint32_t activeSpeed, uint32_t activeWidth) {
  struct Code {
    uint32_t code;
    double value;
  };
  // active_speed: Gb/s per lane (SDR, DDR, QDR, FDR10, FDR, EDR, HDR, NDR, XDR).
  static constexpr Code kLaneGbps[] = {{1, 2.5},     {2, 5},        {4, 10},
                                       {8, 10.3125}, {16, 14.0625}, {32, 25.78125},
                                       {64, 50},     {128, 100},    {256, 200}};
  // active_width: lanes (1x, 4x, 8x, 12x, 2x).
  static constexpr Code kLanes[] = {{1, 1}, {2, 4}, {4, 8}, {8, 12}, {16, 2}};
  auto find = [](const auto& table, uint32_t code) {
    for (const Code& c : table)
      if (c.code == code) return c.value;
    return 0.0;
  };
  return find(kLaneGbps, activeSpeed) * find(kLanes, activeWidth) * 1e9 / 8;
}

}  // namespace loom::transport::ibverbs
