#include "runtime/check.h"

#include "base/log.h"
#include "base/wire.h"

namespace loom::runtime {

namespace {

constexpr size_t kFieldsPerOp = 6;

bootstrap::Bytes signature(const std::vector<const OpDesc*>& ops) {
  ByteWriter w;
  w.u64(ops.size());
  for (const OpDesc* op : ops) {
    w.u64(static_cast<uint64_t>(op->collective));
    w.u64(op->count);
    w.u64(static_cast<uint64_t>(op->dtype));
    w.u64(algo::isReduction(op->collective) ? static_cast<uint64_t>(op->op.kind) : 0);
    w.u64(static_cast<uint64_t>(static_cast<int64_t>(op->root)));
    w.u64(op->seq);
  }
  return w.take();
}

// "allreduce #3 (1000 x float32, sum, root 0)", from the wire form; bounds-checked, since the
// bytes came from another process.
std::string describe(const bootstrap::Bytes& sig, int rank) {
  ByteReader r(sig.data(), sig.size(), "LOOM_CHECK signature of rank " + std::to_string(rank));
  uint64_t n = 0;
  if (!r.u64(&n).isOk() || n > sig.size() / (8 * kFieldsPerOp)) return "<malformed signature>";
  std::string out;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t f[kFieldsPerOp];
    for (uint64_t& v : f)
      if (!r.u64(&v).isOk()) return "<malformed signature>";
    if (f[0] >= static_cast<uint64_t>(algo::kNumCollectives) || !isValidDataType(int(f[2])) ||
        !isValidRedOpKind(int(f[3])))
      return "<malformed signature>";
    const auto c = static_cast<algo::Collective>(f[0]);
    if (!out.empty()) out += ", ";
    out += std::string(algo::collectiveName(c)) + " #" + std::to_string(f[5]) + " (" +
           std::to_string(f[1]) + " x " + dataTypeName(static_cast<DataType>(f[2]));
    if (algo::isReduction(c)) out += std::string(", ") + redOpName(static_cast<RedOpKind>(f[3]));
    out += ", root " + std::to_string(static_cast<int64_t>(f[4])) + ")";
  }
  return n == 0 ? "no collective" : out;
}

std::string keyOf(Communicator* comm, uint64_t n, int rank) {
  return comm->bootstrap().prefix() + "/check/" + std::to_string(n) + "/" + std::to_string(rank) +
         "/";
}

Status verify(Communicator* comm, uint64_t n, const bootstrap::Bytes& mine) {
  bootstrap::Store& store = comm->bootstrap().store();
  const Deadline deadline = Deadline::afterMs(comm->config().timeoutMs);
  std::vector<bootstrap::Bytes> all(comm->nranks());
  for (int r = 0; r < comm->nranks(); ++r) {
    if (r == comm->rank()) {
      all[r] = mine;
      continue;
    }
    Result<bootstrap::Bytes> got =
        store.get(keyOf(comm, n, r) + "s", deadline, &comm->engine().abortFlag());
    if (!got.isOk())
      return got.status().withContext("LOOM_CHECK #" + std::to_string(n) + " on rank " +
                                      std::to_string(comm->rank()) + ": rank " + std::to_string(r) +
                                      " did not publish its collective");
    all[r] = std::move(got).value();
  }
  if (n > 0) store.erasePrefix(keyOf(comm, n - 1, comm->rank())).ignoreError();
  for (int r = 1; r < comm->nranks(); ++r) {
    if (all[r] == all[0]) continue;
    Status s =
        invalidUsage("collective mismatch (LOOM_CHECK) on " + comm->describe() + ": rank " +
                     std::to_string(r) + " is the first to differ from rank 0: rank 0 " + "calls " +
                     describe(all[0], 0) + ", rank " + std::to_string(r) + " calls " +
                     describe(all[r], r) + " (seen by rank " + std::to_string(comm->rank()) + ")");
    LOOM_LOG(kWarn, kColl) << s.toString();
    return s;
  }
  return Status::ok();
}

}  // namespace

Status checkCollectives(const std::vector<CheckedOps>& items) {
  struct Pending {
    Communicator* comm;
    uint64_t n;
    bootstrap::Bytes sig;
  };
  std::vector<Pending> pending;
  for (const CheckedOps& item : items) {
    if (!item.comm->config().check || item.ops.empty() || item.comm->nranks() == 1) continue;
    Pending p{item.comm, item.comm->nextCheckSeq(), signature(item.ops)};
    LOOM_RETURN_IF_ERROR(
        item.comm->bootstrap().store().set(keyOf(p.comm, p.n, p.comm->rank()) + "s", p.sig));
    pending.push_back(std::move(p));
  }
  for (const Pending& p : pending)
    LOOM_RETURN_IF_ERROR(verify(p.comm, p.n, p.sig));
  return Status::ok();
}

}  // namespace loom::runtime
