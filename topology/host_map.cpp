#include "topology/host_map.h"

#include <map>

namespace loom::topo {

HostMap::HostMap(const std::vector<std::string>& hostIds)
    : hostOfRank_(hostIds.size()), localRank_(hostIds.size()) {
  std::map<std::string, int> index;
  for (size_t r = 0; r < hostIds.size(); ++r) {
    auto [it, inserted] = index.emplace(hostIds[r], static_cast<int>(ranksOfHost_.size()));
    if (inserted) ranksOfHost_.emplace_back();
    hostOfRank_[r] = it->second;
    localRank_[r] = static_cast<int>(ranksOfHost_[it->second].size());
    ranksOfHost_[it->second].push_back(static_cast<int>(r));
  }
}

}  // namespace loom::topo
