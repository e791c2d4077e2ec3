// HostLayout: which host each rank of a collective is on, as hierarchical algorithms see it.
//
// A layout is part of an algorithm's arguments (CollectiveArgs::hosts), so algorithms stay pure
// functions of their arguments and the plan cache keys on it. The runtime fills it from the
// communicator's host map (topology/host_map.h); tools and tests build any layout they like.
//
// Hosts are numbered in order of their lowest rank (host 0 holds rank 0), whatever labels the
// layout was built from, so two layouts that group ranks alike compare equal. The empty layout
// means "every rank on one host" (what a caller that knows nothing of hosts gets).
//
// Thread-safety: an immutable value; copies share one read-only table (copying is cheap).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace loom::algo {

class HostLayout {
 public:
  HostLayout() = default;
  // hostOf[r] is any label of rank r's host (equal labels: same host).
  static HostLayout fromHostOf(std::span<const int> hostOf);
  // Host h holds the next ranksPerHost[h] ranks: {2, 3} is ranks 0-1 on host 0, 2-4 on host 1.
  static HostLayout blocks(std::span<const int> ranksPerHost);

  bool empty() const { return table_ == nullptr; }
  int nranks() const;  // 0 when empty
  int nhosts() const;  // 0 when empty
  int hostOf(int rank) const;
  int maxRanksPerHost() const;
  uint64_t hash() const;
  // "0,0,1,1": each rank's host, in rank order ("" when empty).
  std::string toString() const;

  bool operator==(const HostLayout& other) const;
  bool operator<(const HostLayout& other) const;

 private:
  struct Table {
    std::vector<int> hostOf;
    int nhosts = 0;
    int maxRanksPerHost = 0;
    uint64_t hash = 0;
  };
  std::shared_ptr<const Table> table_;
};

}  // namespace loom::algo
