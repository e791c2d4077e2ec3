// A rank of the namespace multi-host test (netns_test.sh), started by loomrun in one network
// namespace per "host". It runs AllReduce, AllGather, ReduceScatter, Broadcast and Reduce (every
// root) with the planner's own choice, at counts below nranks, odd, and large enough (about
// 1 MiB) that the planner picks the hierarchical schedules across hosts, and checks every result
// exactly: inputs are small integers, so sums are exact in int32 and float32.
//
// Prints "rank R: N calls exact" and exits 0, or prints each mismatch and exits 1 (2 when the
// communicator cannot be created). The script reads the TUNING and NET log lines.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "loom/loom.h"

namespace {

struct Job {
  loomComm_t comm;
  int rank;
  int n;
  int calls = 0;
  std::vector<std::string> failures;

  void check(bool ok, const std::string& what) {
    ++calls;
    if (!ok && failures.size() < 20) failures.push_back(what);
  }
  bool call(loomResult_t r, const std::string& what) {
    if (r == loomSuccess) return true;
    failures.push_back(what + " failed: " + loomGetErrorString(r) + ": " + loomGetLastError(comm));
    return false;
  }
};

// Rank r's contribution to element i: small, distinct per rank and element.
int32_t valueOf(int r, size_t i) {
  return static_cast<int32_t>((r + 1) * (i % 997 + 1));
}
int32_t sumOf(int n, size_t i) {
  return static_cast<int32_t>(n * (n + 1) / 2 * (i % 997 + 1));
}

template <typename T>
loomDataType_t typeOf();
template <>
loomDataType_t typeOf<int32_t>() {
  return loomInt32;
}
template <>
loomDataType_t typeOf<float>() {
  return loomFloat32;
}

template <typename T>
void allReduce(Job& job, size_t count, bool inPlace) {
  std::vector<T> in(count), out(count, T(-1));
  for (size_t i = 0; i < count; ++i)
    in[i] = static_cast<T>(valueOf(job.rank, i));
  T* dst = inPlace ? in.data() : out.data();
  const std::string what =
      "allreduce count " + std::to_string(count) + (inPlace ? " in place" : "");
  if (!job.call(loomAllReduce(in.data(), dst, count, typeOf<T>(), loomSum, job.comm, nullptr),
                what))
    return;
  bool ok = true;
  for (size_t i = 0; i < count && ok; ++i)
    ok = dst[i] == static_cast<T>(sumOf(job.n, i));
  job.check(ok, what + ": wrong result");
}

void allGather(Job& job, size_t count) {
  std::vector<int32_t> in(count), out(count * job.n, -1);
  for (size_t i = 0; i < count; ++i)
    in[i] = valueOf(job.rank, i);
  const std::string what = "allgather count " + std::to_string(count);
  if (!job.call(loomAllGather(in.data(), out.data(), count, loomInt32, job.comm, nullptr), what))
    return;
  bool ok = true;
  for (int r = 0; r < job.n && ok; ++r)
    for (size_t i = 0; i < count && ok; ++i)
      ok = out[r * count + i] == valueOf(r, i);
  job.check(ok, what + ": wrong result");
}

void reduceScatter(Job& job, size_t count) {
  std::vector<int32_t> in(count * job.n), out(count, -1);
  for (size_t i = 0; i < in.size(); ++i)
    in[i] = valueOf(job.rank, i);
  const std::string what = "reducescatter count " + std::to_string(count);
  if (!job.call(
          loomReduceScatter(in.data(), out.data(), count, loomInt32, loomSum, job.comm, nullptr),
          what))
    return;
  bool ok = true;
  for (size_t i = 0; i < count && ok; ++i)
    ok = out[i] == sumOf(job.n, job.rank * count + i);
  job.check(ok, what + ": wrong result");
}

void broadcast(Job& job, size_t count, int root) {
  std::vector<int32_t> in(count), out(count, -1);
  for (size_t i = 0; i < count; ++i)
    in[i] = valueOf(root, i);
  const std::string what =
      "broadcast count " + std::to_string(count) + " root " + std::to_string(root);
  if (!job.call(loomBroadcast(in.data(), out.data(), count, loomInt32, root, job.comm, nullptr),
                what))
    return;
  bool ok = true;
  for (size_t i = 0; i < count && ok; ++i)
    ok = out[i] == valueOf(root, i);
  job.check(ok, what + ": wrong result");
}

void reduce(Job& job, size_t count, int root) {
  std::vector<int32_t> in(count), out(count, -1);
  for (size_t i = 0; i < count; ++i)
    in[i] = valueOf(job.rank, i);
  const std::string what =
      "reduce count " + std::to_string(count) + " root " + std::to_string(root);
  if (!job.call(
          loomReduce(in.data(), out.data(), count, loomInt32, loomSum, root, job.comm, nullptr),
          what))
    return;
  bool ok = true;
  for (size_t i = 0; i < count && ok && job.rank == root; ++i)
    ok = out[i] == sumOf(job.n, i);
  job.check(ok, what + ": wrong result");
}

}  // namespace

int main() {
  Job job{};
  if (loomCommInitEnv(&job.comm, nullptr) != loomSuccess) {
    std::fprintf(stderr, "init failed: %s\n", loomGetLastError(nullptr));
    return 2;
  }
  loomCommUserRank(job.comm, &job.rank);
  loomCommCount(job.comm, &job.n);
  constexpr size_t kLarge = 1 << 18;  // 1 MiB of int32
  for (size_t count : {size_t{1}, size_t{7}, size_t{1001}, kLarge}) {
    allReduce<int32_t>(job, count, false);
    allReduce<int32_t>(job, count, true);
    allReduce<float>(job, count, false);
    allGather(job, count / static_cast<size_t>(job.n) + 1);
    reduceScatter(job, count / static_cast<size_t>(job.n) + 1);
    for (int root = 0; root < job.n; ++root) {
      broadcast(job, count, root);
      reduce(job, count, root);
    }
  }
  for (const std::string& f : job.failures)
    std::printf("rank %d: FAIL %s\n", job.rank, f.c_str());
  if (job.failures.empty()) std::printf("rank %d: %d calls exact\n", job.rank, job.calls);
  std::fflush(stdout);
  if (loomCommDestroy(job.comm) != loomSuccess) return 1;
  return job.failures.empty() ? 0 : 1;
}
