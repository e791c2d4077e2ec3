// CPU sets in the two text forms the kernel uses: lists ("0-3,8-11", sysfs cpulist) and masks
// ("ffffffff,0000000f", sysfs cpumap and NCCL's <cpu affinity>: 32-bit hex groups separated by
// commas, most significant group first). Parsers are bounded and reject malformed text.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace loom::topo {

// Highest CPU number accepted by the parsers (bounds memory for hostile input).
inline constexpr int kMaxCpus = 1 << 16;

// Sorted, unique CPU numbers.
Result<std::vector<int>> parseCpuList(std::string_view text);
Result<std::vector<int>> parseCpuMask(std::string_view text);
// "0-3,8-11"; "" for an empty set.
std::string formatCpuList(const std::vector<int>& cpus);
// "0000000f" style groups, at least one group.
std::string formatCpuMask(const std::vector<int>& cpus);

}  // namespace loom::topo
