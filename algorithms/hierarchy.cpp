#include "algorithms/hierarchy.h"

#include <algorithm>

namespace loom::algo {

HostGroups::HostGroups(const CollectiveArgs& args) {
  const int n = std::max(1, args.nranks);
  const bool known = !args.hosts.empty() && args.hosts.nranks() == n;
  ranks_.resize(static_cast<size_t>(known ? args.hosts.nhosts() : 1));
  host_.resize(static_cast<size_t>(n));
  local_.resize(static_cast<size_t>(n));
  for (int r = 0; r < n; ++r) {
    const int h = known ? args.hosts.hostOf(r) : 0;
    host_[r] = h;
    local_[r] = static_cast<int>(ranks_[h].size());
    ranks_[h].push_back(r);
  }
  for (const auto& members : ranks_)
    maxSize_ = std::max(maxSize_, static_cast<int>(members.size()));
}

std::vector<std::vector<int>> heldBlocks(const HostGroups& groups, int host) {
  const int L = groups.size(host);
  std::vector<std::vector<int>> held(static_cast<size_t>(L));
  const int n = static_cast<int>(groups.nranks());
  for (int b = 0; b < n; ++b)
    held[groups.localOf(b) % L].push_back(b);
  return held;
}

bool hostsFit(const CollectiveArgs& args) {
  return args.hosts.empty() || args.hosts.nranks() == args.nranks;
}

bool isFlatLayout(const CollectiveArgs& args) {
  return args.hosts.empty() || args.hosts.nhosts() <= 1 || args.hosts.maxRanksPerHost() <= 1;
}

}  // namespace loom::algo
