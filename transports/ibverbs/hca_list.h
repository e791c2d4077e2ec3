// LOOM_IB_HCA: which RDMA devices and ports the ibverbs transport may use, in NCCL's list syntax
// (NCCL_IB_HCA), so operators can reuse the values they already have.
//
//   mlx5_0:1,mlx5_1     devices by name prefix, optionally one port each ("mlx5_1" = any port)
//   ^mlx5_0             a leading ^ excludes the listed devices instead (everything else is used)
//   =mlx5_0             a leading = matches names exactly instead of by prefix ("mlx5_1" would
//                       otherwise also match mlx5_10); ^= combines both
//   (empty)             every device and port
//
// Also the other device-independent choices of discovery: the RoCE GID index and the port
// rate the planner is told.
//
// Pure: no verbs calls, so it is unit-tested on machines without RDMA devices.
// Thread-safety: values; parseHcaList is reentrant.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace loom::transport::ibverbs {

struct HcaEntry {
  std::string device;
  int port = -1;  // -1: any port
};

class HcaFilter {
 public:
  // Everything passes.
  HcaFilter() = default;

  bool exclude() const { return exclude_; }
  bool exact() const { return exact_; }
  const std::vector<HcaEntry>& entries() const { return entries_; }

  // Whether (device, port) may be used.
  bool allows(std::string_view device, int port) const;

 private:
  friend Result<HcaFilter> parseHcaList(std::string_view text);
  bool listed(std::string_view device, int port) const;

  bool exclude_ = false;
  bool exact_ = false;
  std::vector<HcaEntry> entries_;
};

// InvalidArgument naming LOOM_IB_HCA and the offending item for an empty item, an empty device
// name, a port that is not a positive integer, or a prefix character in the wrong place.
Result<HcaFilter> parseHcaList(std::string_view text);

struct HcaPort {
  std::string device;
  int port = 0;
};

// The candidates the filter allows, in their original order.
std::vector<HcaPort> selectPorts(const HcaFilter& filter, const std::vector<HcaPort>& candidates);

// One entry of a port's GID table, as ibv_query_gid_table reports it.
enum class GidType { kIb, kRoceV1, kRoceV2 };
struct GidEntry {
  int index = 0;
  GidType type = GidType::kIb;
  std::array<uint8_t, 16> gid{};
};

// The GID index to use on a RoCE port (LOOM_IB_GID_INDEX, like NCCL_IB_GID_INDEX):
// `configured` >= 0 is taken as is when the table has it (InvalidArgument naming the variable
// otherwise); -1 (auto) prefers RoCE v2 with an IPv4-mapped address, then RoCE v2 with a
// global (not link-local fe80::) address, then any RoCE v2, then index 0. InvalidArgument when
// the table is empty.
Result<int> selectGidIndex(const std::vector<GidEntry>& table, int64_t configured);

// A port's data rate in bytes per second from ibv_port_attr's active_speed and active_width
// codes (per-lane rate times lanes, e.g. HDR 4x = 200 Gb/s = 25e9 B/s); 0 for unknown codes.
double portBytesPerSec(uint32_t activeSpeed, uint32_t activeWidth);

}  // namespace loom::transport::ibverbs
