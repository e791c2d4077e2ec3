#include "bootstrap/bootstrap.h"

#include <cstring>

#include "base/assert.h"
#include "bootstrap/tcp_store_wire.h"

namespace loom::bootstrap {

namespace {

// The value rank 0 publishes at "<base>/all": kPacked, n (u32), then n x (length u64, bytes);
// or just kDirect when the concatenation would exceed a store value's size limit, in which case
// every rank reads the pieces itself.
constexpr uint8_t kPacked = 1;
constexpr uint8_t kDirect = 2;

Bytes pack(const std::vector<Bytes>& pieces) {
  size_t total = 1 + 4;
  for (const Bytes& p : pieces)
    total += 8 + p.size();
  if (total > wire::kMaxValueBytes) return Bytes{kDirect};
  Bytes out;
  out.reserve(total);
  out.push_back(kPacked);
  out.resize(5);
  wire::putU32(out.data() + 1, static_cast<uint32_t>(pieces.size()));
  for (const Bytes& p : pieces) {
    size_t at = out.size();
    out.resize(at + 8);
    wire::putU64(out.data() + at, p.size());
    out.insert(out.end(), p.begin(), p.end());
  }
  return out;
}

Result<std::vector<Bytes>> unpack(const Bytes& in, int nranks) {
  auto bad = [&](const std::string& why) {
    return internalError("bootstrap: rank 0's combined value is malformed: " + why);
  };
  if (in.size() < 5 || in[0] != kPacked) return bad("bad header");
  if (wire::getU32(in.data() + 1) != static_cast<uint32_t>(nranks))
    return bad("it holds " + std::to_string(wire::getU32(in.data() + 1)) + " pieces, not " +
               std::to_string(nranks));
  std::vector<Bytes> out(static_cast<size_t>(nranks));
  size_t at = 5;
  for (Bytes& piece : out) {
    if (in.size() - at < 8) return bad("truncated");
    uint64_t len = wire::getU64(in.data() + at);
    at += 8;
    if (len > in.size() - at) return bad("a piece overruns the value");
    piece.assign(in.begin() + static_cast<ptrdiff_t>(at),
                 in.begin() + static_cast<ptrdiff_t>(at + len));
    at += len;
  }
  return out;
}

std::string opName(const char* what, uint64_t seq) {
  return std::string(what) + " #" + std::to_string(seq);
}

}  // namespace

std::string formatRanks(const std::vector<int>& ranks) {
  std::string s = ranks.size() == 1 ? "rank " : "ranks ";
  for (size_t i = 0; i < ranks.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(ranks[i]);
  }
  return s;
}

Bootstrap::Bootstrap(std::shared_ptr<Store> store, std::string prefix, int rank, int nranks,
                     int64_t timeoutMs, const std::atomic<bool>* abortFlag)
    : store_(std::move(store)),
      prefix_(std::move(prefix)),
      rank_(rank),
      nranks_(nranks),
      timeoutMs_(timeoutMs),
      abortFlag_(abortFlag) {
  LOOM_CHECK(store_ != nullptr, "Bootstrap needs a store");
  LOOM_CHECK(nranks_ > 0 && rank_ >= 0 && rank_ < nranks_, "Bootstrap: bad rank/nranks");
  LOOM_CHECK(timeoutMs_ > 0, "Bootstrap: timeout must be positive");
}

Result<std::vector<Bytes>> Bootstrap::allGather(const Bytes& mine) {
  uint64_t seq = ++allGatherSeq_;
  int64_t deadlineNs = Deadline::afterMs(timeoutMs_).atNs();
  return gather("allGather", seq, prefix_ + "/ag/" + std::to_string(seq), mine, deadlineNs);
}

Status Bootstrap::barrier() {
  uint64_t seq = ++barrierSeq_;
  int64_t deadlineNs = Deadline::afterMs(timeoutMs_).atNs();
  Result<std::vector<Bytes>> r =
      gather("barrier", seq, prefix_ + "/bar/" + std::to_string(seq), Bytes(), deadlineNs);
  return r.isOk() ? Status::ok() : r.takeStatus();
}

Result<Bytes> Bootstrap::broadcast(const Bytes& value, int root) {
  if (root < 0 || root >= nranks_)
    return invalidArgument("broadcast root " + std::to_string(root) + " is not a rank of " +
                           std::to_string(nranks_));
  uint64_t seq = ++broadcastSeq_;
  std::string op = opName("broadcast", seq);
  std::string key = prefix_ + "/bc/" + std::to_string(seq);
  if (rank_ == root) {
    LOOM_RETURN_IF_ERROR(store_->set(key, value).withContext(op));
    return value;
  }
  Result<Bytes> r = store_->get(key, Deadline::afterMs(timeoutMs_), abortFlag_);
  if (r.isOk()) return r;
  if (r.status().code() == Code::kTimeout)
    return timeoutError(op + ": root rank " + std::to_string(root) + " did not arrive within " +
                        std::to_string(timeoutMs_) + " ms (rank " + std::to_string(rank_) +
                        " waited)");
  return r.status().withContext(op);
}

Status Bootstrap::cleanup() {
  if (cleanedUp_) return Status::ok();
  cleanedUp_ = true;
  // Each rank counts itself out after its last read; the last one knows nobody reads any more.
  LOOM_ASSIGN_OR_RETURN(int64_t left, store_->add(prefix_ + "/left", 1));
  if (left == nranks_) return store_->erasePrefix(prefix_ + "/");
  return Status::ok();
}

Result<std::vector<Bytes>> Bootstrap::gather(const char* what, uint64_t seq,
                                             const std::string& base, const Bytes& mine,
                                             int64_t deadlineNs) {
  if (nranks_ == 1) return std::vector<Bytes>{mine};
  const std::string op = opName(what, seq);
  LOOM_RETURN_IF_ERROR(store_->set(base + "/" + std::to_string(rank_), mine).withContext(op));
  if (rank_ == 0) {
    LOOM_ASSIGN_OR_RETURN(std::vector<Bytes> all, readPieces(what, seq, base, deadlineNs));
    LOOM_RETURN_IF_ERROR(store_->set(base + "/all", pack(all)).withContext(op));
    return all;
  }
  Result<Bytes> packed = store_->get(base + "/all", Deadline::atNs(deadlineNs), abortFlag_);
  if (!packed.isOk()) return missingRanks(what, seq, base, packed.status());
  if (packed->size() == 1 && (*packed)[0] == kDirect)
    return readPieces(what, seq, base, deadlineNs);
  return unpack(*packed, nranks_);
}

Result<std::vector<Bytes>> Bootstrap::readPieces(const char* what, uint64_t seq,
                                                 const std::string& base, int64_t deadlineNs) {
  std::vector<Bytes> all(static_cast<size_t>(nranks_));
  for (int r = 0; r < nranks_; ++r) {
    Result<Bytes> piece =
        store_->get(base + "/" + std::to_string(r), Deadline::atNs(deadlineNs), abortFlag_);
    if (!piece.isOk()) return missingRanks(what, seq, base, piece.status());
    all[static_cast<size_t>(r)] = std::move(piece).value();
  }
  return all;
}

Status Bootstrap::missingRanks(const char* what, uint64_t seq, const std::string& base,
                               const Status& cause) {
  const std::string op = opName(what, seq);
  if (cause.code() != Code::kTimeout) return cause.withContext(op);
  std::vector<int> missing;
  for (int r = 0; r < nranks_; ++r) {
    Result<std::optional<Bytes>> piece = store_->tryGet(base + "/" + std::to_string(r));
    if (!piece.isOk()) return cause.withContext(op);
    if (!piece->has_value()) missing.push_back(r);
  }
  std::string where = " (rank " + std::to_string(rank_) + " waited; prefix '" + prefix_ + "')";
  if (missing.empty())
    return timeoutError(op + ": every rank arrived but rank 0 did not publish the result within " +
                        std::to_string(timeoutMs_) + " ms (is rank 0 stuck?)" + where);
  return timeoutError(op + ": " + formatRanks(missing) + " did not arrive within " +
                      std::to_string(timeoutMs_) + " ms" + where);
}

}  // namespace loom::bootstrap
