#include "algorithms/host_layout.h"

#include <algorithm>
#include <map>

#include "base/hash.h"

namespace loom::algo {

HostLayout HostLayout::fromHostOf(std::span<const int> hostOf) {
  HostLayout layout;
  if (hostOf.empty()) return layout;
  auto table = std::make_shared<Table>();
  std::map<int, int> number;  // label -> host index, in order of first appearance
  std::vector<int> sizes;
  for (int label : hostOf) {
    const auto [it, added] = number.emplace(label, static_cast<int>(number.size()));
    if (added) sizes.push_back(0);
    table->hostOf.push_back(it->second);
    ++sizes[static_cast<size_t>(it->second)];
  }
  table->nhosts = static_cast<int>(sizes.size());
  table->maxRanksPerHost = *std::max_element(sizes.begin(), sizes.end());
  uint64_t h = mix64(table->hostOf.size());
  for (int host : table->hostOf)
    h = hashCombine(h, static_cast<uint64_t>(host));
  table->hash = h;
  layout.table_ = std::move(table);
  return layout;
}

HostLayout HostLayout::blocks(std::span<const int> ranksPerHost) {
  std::vector<int> hostOf;
  for (size_t h = 0; h < ranksPerHost.size(); ++h)
    hostOf.insert(hostOf.end(), static_cast<size_t>(std::max(0, ranksPerHost[h])),
                  static_cast<int>(h));
  return fromHostOf(hostOf);
}

int HostLayout::nranks() const {
  return table_ ? static_cast<int>(table_->hostOf.size()) : 0;
}

int HostLayout::nhosts() const {
  return table_ ? table_->nhosts : 0;
}

int HostLayout::hostOf(int rank) const {
  return table_ ? table_->hostOf[static_cast<size_t>(rank)] : 0;
}

int HostLayout::maxRanksPerHost() const {
  return table_ ? table_->maxRanksPerHost : 0;
}

uint64_t HostLayout::hash() const {
  return table_ ? table_->hash : 0;
}

std::string HostLayout::toString() const {
  std::string out;
  if (!table_) return out;
  for (int host : table_->hostOf)
    out += (out.empty() ? "" : ",") + std::to_string(host);
  return out;
}

bool HostLayout::operator==(const HostLayout& other) const {
  if (table_ == other.table_) return true;
  if (!table_ || !other.table_) return false;
  return table_->hash == other.table_->hash && table_->hostOf == other.table_->hostOf;
}

bool HostLayout::operator<(const HostLayout& other) const {
  if (table_ == other.table_) return false;
  if (!table_ || !other.table_) return !table_;
  if (table_->hash != other.table_->hash) return table_->hash < other.table_->hash;
  return table_->hostOf < other.table_->hostOf;
}

}  // namespace loom::algo
