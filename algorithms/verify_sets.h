// RankSets: interned sets of ranks for the verifier's symbolic values (internal).
//
// A symbolic value records which ranks' contributions it combines. Schedules create few
// distinct sets (a ring makes O(n) of them), so each distinct set is stored once and values hold
// a 32-bit id; unions are cached. Id 0 is the empty set, which the verifier uses to mean "no
// value" (an element nothing has written).
//
// Thread-safety: none; one verifier run owns one RankSets.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace loom::algo::verify_detail {

class RankSets {
 public:
  static constexpr uint32_t kEmpty = 0;

  explicit RankSets(int nranks);

  uint32_t single(int rank) const { return singles_[rank]; }
  uint32_t all() const { return all_; }
  bool disjoint(uint32_t a, uint32_t b) const;
  // a ∪ b; cached.
  uint32_t unite(uint32_t a, uint32_t b);
  // Some rank in both (-1 if none) / the ranks of all() missing from a.
  int firstCommon(uint32_t a, uint32_t b) const;
  uint32_t missingFrom(uint32_t a);
  bool isAll(uint32_t a) const { return a == all_; }
  // "rank 3", "ranks {0-3,5}", "no ranks".
  std::string describe(uint32_t a) const;

  // Raw words of a set, for callers that build sets themselves (vector clocks).
  int words() const { return words_; }
  uint32_t intern(const uint64_t* words);

 private:
  const uint64_t* bits(uint32_t a) const { return &bits_[static_cast<size_t>(a) * words_]; }
  bool has(uint32_t a, int rank) const { return (bits(a)[rank / 64] >> (rank % 64)) & 1; }

  int nranks_;
  int words_;
  uint32_t all_ = kEmpty;
  std::vector<uint32_t> singles_;  // singles_[r]: the set {r}
  std::vector<uint64_t> bits_;     // set a occupies [a * words_, (a + 1) * words_)
  std::unordered_map<std::string, uint32_t> ids_;
  std::unordered_map<uint64_t, uint32_t> unions_;
  uint64_t lastUnionKey_ = UINT64_MAX;  // neighbouring elements usually unite the same sets
  uint32_t lastUnion_ = kEmpty;
};

}  // namespace loom::algo::verify_detail
