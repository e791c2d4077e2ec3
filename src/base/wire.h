// ByteWriter / ByteReader: little-endian serialisation with bounds checks on every read, for
// everything loom exchanges between processes (peer info, control messages). A reader never
// reads past its input and never allocates more than the input could describe: malformed or
// hostile input becomes a Status, not a crash.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "base/status.h"

namespace loom {

class ByteWriter {
 public:
  void u8(uint8_t v) { out_.push_back(v); }
  void u32(uint32_t v) { put(&v, 4); }
  void u64(uint64_t v) { put(&v, 8); }
  void i64(int64_t v) { put(&v, 8); }
  void bytes(const void* p, size_t n) { put(p, n); }
  // Length-prefixed (u32) string.
  void str(const std::string& s) {
    u32(static_cast<uint32_t>(s.size()));
    put(s.data(), s.size());
  }
  const std::vector<uint8_t>& data() const { return out_; }
  std::vector<uint8_t> take() { return std::move(out_); }

 private:
  void put(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  std::vector<uint8_t> out_;
};

class ByteReader {
 public:
  // what names the payload in error messages ("peer info from rank 3").
  ByteReader(const uint8_t* data, size_t size, std::string what)
      : p_(data), left_(size), what_(std::move(what)) {}

  Status u8(uint8_t* v) { return get(v, 1); }
  Status u32(uint32_t* v) { return get(v, 4); }
  Status u64(uint64_t* v) { return get(v, 8); }
  Status i64(int64_t* v) { return get(v, 8); }
  Status bytes(void* out, size_t n) { return get(out, n); }
  // Length-prefixed string of at most maxBytes.
  Status str(std::string* s, size_t maxBytes) {
    uint32_t n;
    LOOM_RETURN_IF_ERROR(u32(&n));
    if (n > maxBytes || n > left_)
      return remoteError(what_ + ": string of " + std::to_string(n) + " bytes exceeds " +
                         (n > maxBytes ? "the limit " + std::to_string(maxBytes)
                                       : "the remaining " + std::to_string(left_)));
    s->assign(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    left_ -= n;
    return Status::ok();
  }
  size_t remaining() const { return left_; }
  Status expectEnd() const {
    if (left_ != 0)
      return remoteError(what_ + ": " + std::to_string(left_) + " unexpected trailing bytes");
    return Status::ok();
  }

 private:
  Status get(void* out, size_t n) {
    if (n > left_)
      return remoteError(what_ + ": truncated (needed " + std::to_string(n) + " bytes, " +
                         std::to_string(left_) + " left)");
    std::memcpy(out, p_, n);
    p_ += n;
    left_ -= n;
    return Status::ok();
  }
  const uint8_t* p_;
  size_t left_;
  std::string what_;
};

}  // namespace loom
