#include "algorithms/verify_sets.h"

#include "base/assert.h"

namespace loom::algo::verify_detail {

RankSets::RankSets(int nranks) : nranks_(nranks), words_((nranks + 63) / 64) {
  LOOM_CHECK_GT(nranks, 0);
  std::vector<uint64_t> words(words_, 0);
  LOOM_CHECK_EQ(intern(words.data()), kEmpty);
  for (int r = 0; r < nranks; ++r) {
    std::vector<uint64_t> one(words_, 0);
    one[r / 64] = uint64_t{1} << (r % 64);
    singles_.push_back(intern(one.data()));
    words[r / 64] |= uint64_t{1} << (r % 64);
  }
  all_ = intern(words.data());
}

uint32_t RankSets::intern(const uint64_t* words) {
  std::string key(reinterpret_cast<const char*>(words), sizeof(uint64_t) * words_);
  auto [it, inserted] = ids_.emplace(std::move(key), static_cast<uint32_t>(ids_.size()));
  if (inserted) bits_.insert(bits_.end(), words, words + words_);
  return it->second;
}

bool RankSets::disjoint(uint32_t a, uint32_t b) const {
  const uint64_t* x = bits(a);
  const uint64_t* y = bits(b);
  for (int w = 0; w < words_; ++w) {
    if (x[w] & y[w]) return false;
  }
  return true;
}

uint32_t RankSets::unite(uint32_t a, uint32_t b) {
  const uint64_t key = (static_cast<uint64_t>(a) << 32) | b;
  if (key == lastUnionKey_) return lastUnion_;
  lastUnionKey_ = key;
  auto it = unions_.find(key);
  if (it != unions_.end()) return lastUnion_ = it->second;
  std::vector<uint64_t> words(bits(a), bits(a) + words_);
  const uint64_t* y = bits(b);
  for (int w = 0; w < words_; ++w) {
    words[w] |= y[w];
  }
  const uint32_t id = intern(words.data());
  unions_.emplace(key, id);
  return lastUnion_ = id;
}

int RankSets::firstCommon(uint32_t a, uint32_t b) const {
  for (int r = 0; r < nranks_; ++r) {
    if (has(a, r) && has(b, r)) return r;
  }
  return -1;
}

uint32_t RankSets::missingFrom(uint32_t a) {
  std::vector<uint64_t> words(bits(all_), bits(all_) + words_);
  const uint64_t* x = bits(a);
  for (int w = 0; w < words_; ++w) {
    words[w] &= ~x[w];
  }
  return intern(words.data());
}

std::string RankSets::describe(uint32_t a) const {
  std::string list;
  int members = 0, only = -1;
  for (int r = 0; r < nranks_; ++r) {
    if (!has(a, r)) continue;
    int end = r;
    while (end + 1 < nranks_ && has(a, end + 1)) {
      ++end;
    }
    members += end - r + 1;
    only = r;
    if (!list.empty()) list += ",";
    list += std::to_string(r);
    if (end > r) list += (end == r + 1 ? "," : "-") + std::to_string(end);
    r = end;
  }
  if (members == 0) return "no ranks";
  if (members == 1) return "rank " + std::to_string(only);
  return "ranks {" + list + "}";
}

}  // namespace loom::algo::verify_detail
