#include "collectives.h"

#include <algorithm>
#include <string>

namespace loom::perf {
namespace {

const CollInfo kColls[] = {
    {CollKind::kAllReduce, "all_reduce", "allreduce", "allreduce", true, false, false, false},
    {CollKind::kAllGather, "all_gather", "allgather", "allgather", false, false, true, false},
    {CollKind::kReduceScatter, "reduce_scatter", "reduce_scatter", "reducescatter", true, false,
     true, false},
    {CollKind::kBroadcast, "broadcast", "bcast", "broadcast", false, true, false, true},
    {CollKind::kReduce, "reduce", "reduce", "reduce", true, true, false, false},
    {CollKind::kAllToAll, "alltoall", "alltoall", "alltoall", false, false, true, false},
    {CollKind::kGather, "gather", "gather", "gather", false, true, true, false},
    {CollKind::kScatter, "scatter", "scatter", "scatter", false, true, true, false},
    {CollKind::kSendRecv, "sendrecv", "sendrecv", "send,recv", false, false, false, false},
};

loomRedOp_t builtinOp(OpKind op) {
  switch (op) {
    case OpKind::kProd:
      return loomProd;
    case OpKind::kMax:
      return loomMax;
    case OpKind::kMin:
      return loomMin;
    case OpKind::kAvg:
      return loomAvg;
    default:
      return loomSum;
  }
}

// The scalar 2 of mulsum, as one element of `type` (PreMulSum takes a scalar of the type).
void scalarTwo(loomDataType_t type, void* out) {
  encodeInt(type, 2, out);
}

}  // namespace

const CollInfo& collInfo(CollKind kind) {
  return kColls[static_cast<int>(kind)];
}

std::span<const CollInfo> allCollectives() {
  return kColls;
}

std::optional<CollKind> parseCollective(std::string_view name) {
  std::string key(name);
  if (key.size() > 5 && key.ends_with("_perf")) key.resize(key.size() - 5);
  std::string squeezed;
  for (char c : key)
    if (c != '_' && c != '-') squeezed += c;
  for (const CollInfo& info : kColls) {
    std::string candidate;
    for (const char* p = info.name; *p; ++p)
      if (*p != '_') candidate += *p;
    if (squeezed == candidate || key == info.peerName) return info.kind;
  }
  return std::nullopt;
}

Counts countsFor(CollKind kind, size_t count, int nranks) {
  const size_t n = static_cast<size_t>(nranks);
  const size_t per = count / n;
  Counts c;
  switch (kind) {
    case CollKind::kAllReduce:
    case CollKind::kBroadcast:
    case CollKind::kReduce:
    case CollKind::kSendRecv:
      c.param = c.send = c.recv = count;
      break;
    case CollKind::kAllGather:
    case CollKind::kGather:
      c.param = c.send = per;
      c.recv = per * n;
      c.sendInPlace = per;  // times the rank, applied by the caller
      break;
    case CollKind::kReduceScatter:
    case CollKind::kScatter:
      c.param = c.recv = per;
      c.send = per * n;
      c.recvInPlace = per;  // times the rank
      break;
    case CollKind::kAllToAll:
      c.param = per;
      c.send = c.recv = per * n;
      break;
  }
  return c;
}

size_t rowBytes(const Counts& counts, size_t elementBytes) {
  return std::max(counts.send, counts.recv) * elementBytes;
}

double busFactor(CollKind kind, int nranks) {
  const double n = nranks;
  switch (kind) {
    case CollKind::kAllReduce:
      return 2.0 * (n - 1) / n;
    case CollKind::kBroadcast:
    case CollKind::kReduce:
    case CollKind::kSendRecv:
      return 1.0;
    default:
      return (n - 1) / n;
  }
}

void bandwidth(CollKind kind, const Counts& counts, size_t elementBytes, int nranks, double seconds,
               double* algBw, double* busBw) {
  const double mult = collInfo(kind).perRankParam ? nranks : 1;
  const double bytes = static_cast<double>(counts.param) * static_cast<double>(elementBytes) * mult;
  *algBw = seconds > 0 ? bytes / 1.0e9 / seconds : 0;
  *busBw = *algBw * busFactor(kind, nranks);
}

loomResult_t runCollective(CollKind kind, loomComm_t comm, const void* sendbuf, void* recvbuf,
                           const Counts& counts, loomDataType_t type, OpKind op, int root,
                           loomStream_t stream) {
  loomRedOp_t redop = builtinOp(op);
  if (op == OpKind::kMulSum && collInfo(kind).reduces) {
    alignas(8) unsigned char scalar[8];
    scalarTwo(type, scalar);
    loomResult_t r = loomRedOpCreatePreMulSum(&redop, scalar, type, loomScalarHostImmediate, comm);
    if (r != loomSuccess) return r;
  }
  const size_t n = counts.param;
  loomResult_t r = loomSuccess;
  switch (kind) {
    case CollKind::kAllReduce:
      r = loomAllReduce(sendbuf, recvbuf, n, type, redop, comm, stream);
      break;
    case CollKind::kBroadcast:
      r = loomBroadcast(sendbuf, recvbuf, n, type, root, comm, stream);
      break;
    case CollKind::kReduce:
      r = loomReduce(sendbuf, recvbuf, n, type, redop, root, comm, stream);
      break;
    case CollKind::kAllGather:
      r = loomAllGather(sendbuf, recvbuf, n, type, comm, stream);
      break;
    case CollKind::kReduceScatter:
      r = loomReduceScatter(sendbuf, recvbuf, n, type, redop, comm, stream);
      break;
    case CollKind::kAllToAll:
      r = loomAllToAll(sendbuf, recvbuf, n, type, comm, stream);
      break;
    case CollKind::kGather:
      r = loomGather(sendbuf, recvbuf, n, type, root, comm, stream);
      break;
    case CollKind::kScatter:
      r = loomScatter(sendbuf, recvbuf, n, type, root, comm, stream);
      break;
    case CollKind::kSendRecv: {
      int rank = 0, nranks = 1;
      loomCommUserRank(comm, &rank);
      loomCommCount(comm, &nranks);
      // A ring: send to the next rank, receive from the previous one, as one group.
      loomGroupStart();
      r = loomSend(sendbuf, n, type, (rank + 1) % nranks, comm, stream);
      if (r == loomSuccess)
        r = loomRecv(recvbuf, n, type, (rank - 1 + nranks) % nranks, comm, stream);
      const loomResult_t end = loomGroupEnd();
      if (r == loomSuccess) r = end;
      break;
    }
  }
  if (op == OpKind::kMulSum && collInfo(kind).reduces) {
    const loomResult_t d = loomRedOpDestroy(redop, comm);
    if (r == loomSuccess) r = d;
  }
  return r;
}

}  // namespace loom::perf
