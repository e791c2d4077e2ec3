#include "bootstrap/store.h"

namespace loom::bootstrap {

Result<std::optional<Bytes>> Store::tryGet(const std::string& key) {
  Result<Bytes> r = get(key, Deadline::afterMs(0));
  if (r.isOk()) return std::optional<Bytes>(std::move(r).value());
  if (r.status().code() == Code::kTimeout) return std::optional<Bytes>();
  return r.takeStatus();
}

Status InMemoryStore::set(const std::string& key, const Bytes& value) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    data_[key] = value;
  }
  cv_.notify_all();
  return Status::ok();
}

Result<Bytes> InMemoryStore::get(const std::string& key, Deadline deadline,
                                 const std::atomic<bool>* cancel) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    auto it = data_.find(key);
    if (it != data_.end()) return it->second;
    if (cancel && cancel->load()) return abortedError("store get '" + key + "': aborted");
    if (deadline.expired())
      return timeoutError("store get '" + key + "': key did not appear before the deadline");
    // Wake at least every 50 ms to notice cancellation.
    int64_t waitNs = deadline.atNs() - nowNs();
    if (waitNs > 50000000) waitNs = 50000000;
    cv_.wait_for(lock, std::chrono::nanoseconds(waitNs));
  }
}

Result<int64_t> InMemoryStore::add(const std::string& key, int64_t delta) {
  int64_t value = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Bytes& b = data_[key];
    if (b.size() == sizeof(int64_t)) std::memcpy(&value, b.data(), sizeof(value));
    value += delta;
    b.resize(sizeof(int64_t));
    std::memcpy(b.data(), &value, sizeof(value));
  }
  cv_.notify_all();
  return value;
}

Status InMemoryStore::erasePrefix(const std::string& prefix) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = data_.lower_bound(prefix); it != data_.end() && it->first.rfind(prefix, 0) == 0;)
    it = data_.erase(it);
  return Status::ok();
}

Result<std::optional<Bytes>> InMemoryStore::tryGet(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = data_.find(key);
  if (it == data_.end()) return std::optional<Bytes>();
  return std::optional<Bytes>(it->second);
}

}  // namespace loom::bootstrap
