#include "check.h"

#include <cstring>

namespace loom::perf {
namespace {

char* at(void* base, size_t elements, size_t elementBytes) {
  return static_cast<char*>(base) + elements * elementBytes;
}

// Where the row's output lives and how many elements this rank must check there.
size_t outputElements(const RowSpec& row) {
  const bool rootOnly = row.kind == CollKind::kReduce || row.kind == CollKind::kGather;
  if (rootOnly && row.rank != row.root) return 0;
  return row.counts.recv;
}

// Expected value of output element k of this rank.
int64_t expectedAt(const RowSpec& row, const ValueModel& values, size_t k) {
  const size_t p = row.counts.param;
  const int n = row.nranks, r = row.rank;
  switch (row.kind) {
    case CollKind::kAllReduce:
    case CollKind::kReduce:
      return values.reduced(k);
    case CollKind::kReduceScatter:
      return values.reduced(static_cast<uint64_t>(r) * p + k);
    case CollKind::kBroadcast:
      return values.input(row.root, k);
    case CollKind::kAllGather:
    case CollKind::kGather:
      return values.input(static_cast<int>(k / p), k);
    case CollKind::kAllToAll:
      return values.input(static_cast<int>(k / p), static_cast<uint64_t>(r) * p + k % p);
    case CollKind::kScatter:
      return values.input(row.root, static_cast<uint64_t>(r) * p + k);
    case CollKind::kSendRecv:
      return values.input((r - 1 + n) % n, k);
  }
  return 0;
}

// Writes this rank's inputs into sendbuf.
void writeInputs(const RowSpec& row, const ValueModel& values, void* sendbuf) {
  const size_t es = typeInfo(row.type).bytes;
  const IntEncoder enc(row.type);
  const size_t p = row.counts.param;
  const int r = row.rank;
  auto fill = [&](size_t count, auto&& valueOf) {
    char* out = static_cast<char*>(sendbuf);
    for (size_t i = 0; i < count; ++i)
      enc.put(valueOf(i), out + i * es);
  };
  switch (row.kind) {
    case CollKind::kAllReduce:
    case CollKind::kReduce:
    case CollKind::kReduceScatter:
    case CollKind::kAllToAll:
    case CollKind::kSendRecv:
      fill(row.counts.send, [&](size_t i) { return values.input(r, i); });
      break;
    case CollKind::kAllGather:
    case CollKind::kGather:
      fill(p, [&](size_t i) { return values.input(r, static_cast<uint64_t>(r) * p + i); });
      break;
    case CollKind::kBroadcast:
    case CollKind::kScatter:
      if (r == row.root) fill(row.counts.send, [&](size_t i) { return values.input(r, i); });
      break;
  }
}

}  // namespace

void rowPointers(const RowSpec& row, void* sendBase, void* recvBase, void** sendbuf,
                 void** recvbuf) {
  const size_t es = typeInfo(row.type).bytes;
  const size_t rank = static_cast<size_t>(row.rank);
  *sendbuf = sendBase;
  *recvbuf = recvBase;
  if (!row.inPlace) return;
  switch (row.kind) {
    case CollKind::kAllGather:
    case CollKind::kGather:
      *sendbuf = at(recvBase, rank * row.counts.sendInPlace, es);
      break;
    case CollKind::kReduceScatter:
    case CollKind::kScatter:
      *recvbuf = at(sendBase, rank * row.counts.recvInPlace, es);
      break;
    default:
      *sendbuf = recvBase;
      break;
  }
}

void prepareRow(const RowSpec& row, const ValueModel& values, void* sendbuf, void* recvbuf) {
  const TypeInfo& info = typeInfo(row.type);
  std::memset(recvbuf, info.isFloat ? 0xFF : 0xA5, row.counts.recv * info.bytes);
  writeInputs(row, values, sendbuf);
}

int64_t countWrong(const RowSpec& row, const ValueModel& values, const void* recvbuf,
                   std::string* firstError) {
  const size_t es = typeInfo(row.type).bytes;
  const IntEncoder enc(row.type);
  const char* out = static_cast<const char*>(recvbuf);
  const size_t count = outputElements(row);
  int64_t wrong = 0;
  for (size_t k = 0; k < count; ++k) {
    uint64_t want = 0, got = 0;
    const int64_t expected = expectedAt(row, values, k);
    enc.put(expected, &want);
    std::memcpy(&got, out + k * es, es);
    if (want == got) continue;
    if (wrong == 0 && firstError != nullptr) {
      *firstError = "element " + std::to_string(k) + ": expected " +
                    std::to_string(decodeValue(row.type, &want)) + ", got " +
                    std::to_string(decodeValue(row.type, out + k * es));
    }
    ++wrong;
  }
  return wrong;
}

void corruptOutput(const RowSpec& row, void* recvbuf) {
  if (outputElements(row) == 0) return;
  *static_cast<unsigned char*>(recvbuf) ^= 0x01;
}

}  // namespace loom::perf
