// memory.h - a tagged memory account (param, grad, optimizer, activation) and the buffer type
// that reports to it, so that the checks can read persistent and peak bytes per rank.
//
// One account per rank; not thread-safe (a rank is one thread). "Persistent" bytes are those
// live at a step boundary (markPersistent() is called after each optimizer step); "peak" is
// the high-water mark of live bytes per tag.
#ifndef LOOM_TRAINER_MEMORY_H_
#define LOOM_TRAINER_MEMORY_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace loom::trainer {

enum class MemTag { kParam = 0, kGrad, kOptimizer, kActivation, kCount };
inline constexpr int kNumMemTags = static_cast<int>(MemTag::kCount);
const char* memTagName(MemTag t);

struct MemoryReport {
  std::array<int64_t, kNumMemTags> persistent{};
  std::array<int64_t, kNumMemTags> peak{};
  int64_t persistentTotal() const {
    int64_t s = 0;
    for (int64_t b : persistent)
      s += b;
    return s;
  }
};

class MemoryAccount {
 public:
  void add(MemTag t, int64_t bytes) {
    int64_t& c = current_[static_cast<int>(t)];
    c += bytes;
    if (c > peak_[static_cast<int>(t)]) peak_[static_cast<int>(t)] = c;
  }
  void sub(MemTag t, int64_t bytes) { current_[static_cast<int>(t)] -= bytes; }
  int64_t current(MemTag t) const { return current_[static_cast<int>(t)]; }
  void markPersistent() { persistent_ = current_; }
  MemoryReport report() const {
    MemoryReport r;
    r.persistent = persistent_;
    r.peak = peak_;
    return r;
  }
  std::string toString() const;

 private:
  std::array<int64_t, kNumMemTags> current_{};
  std::array<int64_t, kNumMemTags> peak_{};
  std::array<int64_t, kNumMemTags> persistent_{};
};

// A std::vector whose size is charged to an account under a tag while it lives. Move-only.
// Without an account it is a plain vector.
template <typename E>
class Tracked {
 public:
  Tracked() = default;
  Tracked(MemoryAccount* acct, MemTag tag) : acct_(acct), tag_(tag) {}
  Tracked(const Tracked&) = delete;
  Tracked& operator=(const Tracked&) = delete;
  Tracked(Tracked&& o) noexcept
      : v_(std::move(o.v_)), acct_(o.acct_), tag_(o.tag_), charged_(std::exchange(o.charged_, 0)) {}
  Tracked& operator=(Tracked&& o) noexcept {
    if (this != &o) {
      release();
      v_ = std::move(o.v_);
      acct_ = o.acct_;
      tag_ = o.tag_;
      charged_ = std::exchange(o.charged_, 0);
    }
    return *this;
  }
  ~Tracked() { release(); }

  void bind(MemoryAccount* acct, MemTag tag) {
    release();
    acct_ = acct;
    tag_ = tag;
  }
  // Resizes to n elements, all set to `fill`.
  void assign(size_t n, E fill = E()) {
    v_.assign(n, fill);
    charge();
  }
  // Frees the storage and its charge.
  void release() {
    if (acct_ && charged_) acct_->sub(tag_, charged_);
    charged_ = 0;
    std::vector<E>().swap(v_);
  }
  E* data() { return v_.data(); }
  const E* data() const { return v_.data(); }
  size_t size() const { return v_.size(); }
  bool empty() const { return v_.empty(); }
  E& operator[](size_t i) { return v_[i]; }
  const E& operator[](size_t i) const { return v_[i]; }

 private:
  void charge() {
    const int64_t bytes = static_cast<int64_t>(v_.size() * sizeof(E));
    if (acct_) {
      acct_->sub(tag_, charged_);
      acct_->add(tag_, bytes);
    }
    charged_ = bytes;
  }
  std::vector<E> v_;
  MemoryAccount* acct_ = nullptr;
  MemTag tag_ = MemTag::kActivation;
  int64_t charged_ = 0;
};

}  // namespace loom::trainer

#endif  // LOOM_TRAINER_MEMORY_H_
