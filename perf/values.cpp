#include "values.h"

#include <algorithm>

namespace loom::perf {
namespace {

int64_t ceilDiv(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

}  // namespace

ValueModel::ValueModel(loomDataType_t type, OpKind op, int nranks)
    : type_(type), op_(op), nranks_(nranks), signed_(typeInfo(type).isSigned) {
  const TypeInfo& info = typeInfo(type);
  const int64_t n = nranks;
  // mulsum doubles the sum, so its inputs use half the limit.
  const int64_t limit =
      std::max<int64_t>(1, op == OpKind::kMulSum ? info.exactLimit / 2 : info.exactLimit);
  sumStride_ = ceilDiv(n, limit);
  const int64_t active = ceilDiv(n, sumStride_);
  sumMax_ = std::clamp<int64_t>(limit / active, 1, 1 << 20);
  prodStride_ = ceilDiv(n, info.maxPow2);
  avgMax_ = n <= info.exactLimit ? std::min<int64_t>(info.exactLimit / n, 1 << 20) : 0;
  // Small ranges keep integer values clear of the 0xA5 sentinel bytes (check.h).
  anyRange_ = std::min<int64_t>(info.exactLimit, info.bytes == 1 ? 50 : 1 << 20);
  if (!info.isSigned) anyRange_ = std::min<int64_t>(anyRange_, info.bytes == 1 ? 100 : 1 << 20);
}

int64_t ValueModel::sumInput(int rank, uint64_t index) const {
  if ((static_cast<uint64_t>(rank) + index) % static_cast<uint64_t>(sumStride_) != 0) return 0;
  return 1 + static_cast<int64_t>(mixHash(rank, index) % static_cast<uint64_t>(sumMax_));
}

int64_t ValueModel::prodInput(int rank, uint64_t index) const {
  const uint64_t h = mixHash(rank, index);
  int64_t v = 1;
  if ((static_cast<uint64_t>(rank) + index) % static_cast<uint64_t>(prodStride_) == 0 && (h & 1))
    v = 2;
  if (signed_ && (h >> 8) % 5 == 0) v = -v;
  return v;
}

int64_t ValueModel::avgInput(int rank, uint64_t index) const {
  if (avgMax_ < 1) return 0;
  if (avgMax_ < 3) return 1;
  // Base c in [1, m-2] for the element, and +e / -e on the ranks of each pair (2k, 2k+1);
  // an odd last rank gets c alone. The sum is exactly nranks * c.
  const uint64_t h = mixHash(0x5151, index);
  const int64_t c = 1 + static_cast<int64_t>(h % static_cast<uint64_t>(avgMax_ - 2));
  const int64_t e = static_cast<int64_t>((h >> 32) & 1);
  const bool paired = (rank | 1) < nranks_;
  if (!paired) return c;
  return rank % 2 == 0 ? c + e : c - e;
}

int64_t ValueModel::anyInput(int rank, uint64_t index) const {
  const uint64_t h = mixHash(rank, index);
  if (!signed_) return static_cast<int64_t>(h % static_cast<uint64_t>(anyRange_ + 1));
  return static_cast<int64_t>(h % static_cast<uint64_t>(2 * anyRange_ + 1)) - anyRange_;
}

int64_t ValueModel::input(int rank, uint64_t index) const {
  switch (op_) {
    case OpKind::kSum:
    case OpKind::kMulSum:
      return sumInput(rank, index);
    case OpKind::kProd:
      return prodInput(rank, index);
    case OpKind::kAvg:
      return avgInput(rank, index);
    default:
      return anyInput(rank, index);
  }
}

int64_t ValueModel::reduced(uint64_t index) const {
  // Integer sums and products wrap in uint64 arithmetic, as the library's do in the type's
  // width; the low bits are what encodeInt stores.
  switch (op_) {
    case OpKind::kSum:
    case OpKind::kMulSum: {
      uint64_t sum = 0;
      for (int r = 0; r < nranks_; ++r)
        sum += static_cast<uint64_t>(sumInput(r, index));
      if (op_ == OpKind::kMulSum) sum *= 2;
      return static_cast<int64_t>(sum);
    }
    case OpKind::kProd: {
      uint64_t prod = 1;
      for (int r = 0; r < nranks_; ++r)
        prod *= static_cast<uint64_t>(prodInput(r, index));
      return static_cast<int64_t>(prod);
    }
    case OpKind::kAvg: {
      int64_t sum = 0;
      for (int r = 0; r < nranks_; ++r)
        sum += avgInput(r, index);
      return sum / nranks_;  // exact by construction
    }
    case OpKind::kMax:
    case OpKind::kMin: {
      int64_t best = anyInput(0, index);
      for (int r = 1; r < nranks_; ++r) {
        const int64_t v = anyInput(r, index);
        best = op_ == OpKind::kMax ? std::max(best, v) : std::min(best, v);
      }
      return best;
    }
    case OpKind::kNone:
      break;
  }
  return anyInput(0, index);
}

}  // namespace loom::perf
